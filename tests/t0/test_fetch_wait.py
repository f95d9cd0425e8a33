"""T0: bundle.fetch waits for its downloads in short slices (so Ctrl-C reaches Python on Windows before
3.14) without changing what a download returns or raises."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from labkit.bundle.fetch import result_interruptibly


def test_a_slow_download_is_waited_for_across_many_slices():
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: release.wait(5) and "done")
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        assert result_interruptibly(fut, slice_s=0.02) == "done"
        assert time.monotonic() - started >= 0.25  # it waited for the download, slice after slice


def test_a_downloads_own_timeout_is_raised_not_waited_on_forever():
    def stalled():
        raise TimeoutError("read timed out")  # a socket timeout inside the download

    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(stalled)
        with pytest.raises(TimeoutError, match="read timed out"):
            result_interruptibly(fut, slice_s=0.02)


def test_ctrl_c_during_the_wait_reaches_the_caller():
    import _thread
    import signal

    # Python turns SIGINT into KeyboardInterrupt only when SIGINT was not ignored as it started; a suite
    # started with SIGINT ignored (`nohup ... &`) has no handler, and interrupt_main() would do nothing
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    release = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(release.wait, 5)
        try:
            with pytest.raises(KeyboardInterrupt):
                # Ctrl-C as Python delivers it to the main thread; started inside the raises block, so a
                # loaded machine cannot deliver it before the test is ready for it
                threading.Timer(0.1, _thread.interrupt_main).start()
                result_interruptibly(fut, slice_s=0.02)
        finally:
            release.set()
            signal.signal(signal.SIGINT, previous)
