"""bundle.fetch against a real HTTP server on loopback with injected faults (t1: real sockets, real files)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import default_sigint
from tests.t1.bundle_support import (REPO, Fault, file_entry, invoke, sha256, snapshot, write_lock)
from tests.t1.bundle_support import tmpfs  # noqa: F401 (a fixture)
from labkit.bundle import checksums, fetch, lock

pytestmark = pytest.mark.t1

DATA = os.urandom(3 * 1024 * 1024 + 123)   # a few chunks, not a whole multiple of them
SMALL = b"small and valid\n" * 100


def run(lock_file, dest, **opts):
    lk = lock.load(lock_file)
    return lk, fetch.fetch(lk, lk.artifacts, dest, fetch.Options(**opts))


def test_fetch_writes_verified_files_and_checksums_and_rerun_downloads_nothing(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    lock_file = write_lock(tmp_path / "lock.yaml", [file_entry("a", "k8s/a.bin", [url], DATA)])
    dest = tmp_path / "bundle"
    lk, outcomes = run(lock_file, dest)
    assert [o.error for o in outcomes] == [None]
    assert (dest / "k8s/a.bin").read_bytes() == DATA
    assert (dest / "CHECKSUMS").read_text() == f"a sha256 {sha256(DATA)} k8s/a.bin\n"
    assert not list(dest.rglob("*.part"))
    before = len(srv.seen)
    _, again = run(lock_file, dest)
    assert again[0].skipped and len(srv.seen) == before  # nothing fetched the second time


def test_mirrors_are_tried_in_order(srv, tmp_path):
    good = srv.add("/good.bin", DATA)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [srv.url + "/gone.bin", good], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is None
    assert [s.path for s in srv.seen] == ["/gone.bin", "/good.bin"]


def test_dropped_connection_resumes_with_a_range_request(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    srv.fault("/a.bin", Fault(drop_after=1_000_000))
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is None
    assert (tmp_path / "b/a.bin").read_bytes() == DATA
    assert [s.range for s in srv.requests_for("/a.bin")] == [None, "bytes=1000000-"]


def test_a_stalled_server_counts_as_a_drop_and_is_resumed(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    srv.fault("/a.bin", Fault(stall_after=500_000, stall=3))
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b", timeout=(5, 1))
    assert outcomes[0].error is None and (tmp_path / "b/a.bin").read_bytes() == DATA
    assert srv.requests_for("/a.bin")[-1].range == "bytes=500000-"


def test_a_server_that_ignores_range_still_gives_the_right_file(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    srv.fault("/a.bin", Fault(drop_after=700_000))
    srv.fault("/a.bin", Fault(ignore_range=True))
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is None and (tmp_path / "b/a.bin").read_bytes() == DATA


def test_slow_server_completes(srv, tmp_path):
    data = DATA[:300_000]
    url = srv.add("/slow.bin", data)
    srv.fault("/slow.bin", Fault(rate=400_000))
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("s", "s.bin", [url], data)])
    started = time.monotonic()
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is None and (tmp_path / "b/s.bin").read_bytes() == data
    assert time.monotonic() - started >= 0.5  # it really was slow


def test_connection_dropping_on_every_mirror_keeps_the_part_and_a_rerun_resumes(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    srv.fault("/a.bin", Fault(drop_after=1_200_000))
    srv.fault("/a.bin", Fault(drop_after=0), times=0)  # then every resume dies at once
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "k8s/a.bin", [url], DATA)])
    dest = tmp_path / "b"
    _, outcomes = run(lock_file, dest, retries=2)
    err = outcomes[0].error
    assert err is not None and "connection kept dropping" in err.message and "a (k8s/a.bin)" in err.message
    assert "run the same command again" in err.fix
    assert not (dest / "k8s/a.bin").exists()  # nothing that looks complete
    assert (dest / "k8s/a.bin.part").stat().st_size == 1_200_000
    assert not (dest / "CHECKSUMS").exists()  # written only after success
    srv.clear("/a.bin")
    _, outcomes = run(lock_file, dest)
    assert outcomes[0].error is None and (dest / "k8s/a.bin").read_bytes() == DATA
    assert srv.requests_for("/a.bin")[-1].range == "bytes=1200000-"


def test_wrong_bytes_from_one_mirror_fall_back_to_the_next(srv, tmp_path):
    bad, good = srv.add("/bad.bin", DATA), srv.add("/good.bin", DATA)
    srv.fault("/bad.bin", Fault(wrong=True), times=0)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [bad, good], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is None and (tmp_path / "b/a.bin").read_bytes() == DATA


def test_wrong_bytes_everywhere_save_nothing_and_touch_no_valid_file(srv, tmp_path):
    url, ok = srv.add("/a.bin", DATA), srv.add("/ok.txt", SMALL)
    srv.fault("/a.bin", Fault(wrong=True), times=0)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("ok", "ok.txt", [ok], SMALL),
                                                 file_entry("a", "a.bin", [url], DATA)])
    dest = tmp_path / "b"
    run(lock_file, dest)  # ok.txt arrives, a.bin fails
    before = snapshot(dest / "ok.txt")
    _, outcomes = run(lock_file, dest)
    err = outcomes[1].error
    assert err is not None and "do not match the lock" in err.message and "nothing was saved" in err.message
    assert not (dest / "a.bin").exists() and not (dest / "a.bin.part").exists()
    assert snapshot(dest / "ok.txt") == before


def test_a_corrupt_file_in_the_bundle_is_replaced(srv, tmp_path):
    url = srv.add("/a.bin", DATA)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / "a.bin").write_bytes(b"x" * len(DATA))
    _, outcomes = run(lock_file, dest)
    assert outcomes[0].error is None and not outcomes[0].skipped
    assert (dest / "a.bin").read_bytes() == DATA


def test_wrong_size_is_caught_even_with_the_right_prefix(srv, tmp_path):
    url = srv.add("/a.bin", DATA + b"trailing junk")
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    _, outcomes = run(lock_file, tmp_path / "b")
    assert outcomes[0].error is not None and not (tmp_path / "b/a.bin").exists()


def test_unpinned_needs_the_flag_and_then_records_what_arrived(srv, tmp_path):
    url = srv.add("/u.yaml", SMALL)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("u", "manifests/u.yaml", [url])])
    lk = lock.load(lock_file)
    with pytest.raises(Exception) as exc:
        fetch.fetch(lk, lk.artifacts, tmp_path / "b", fetch.Options())
    assert "unpinned" in str(exc.value) and "--allow-unpinned" in exc.value.fix
    assert not srv.seen
    outcomes = fetch.fetch(lk, lk.artifacts, tmp_path / "b", fetch.Options(allow_unpinned=True))
    assert outcomes[0].sha256 == sha256(SMALL)
    assert checksums.render(lk) == ""  # an unpinned artifact gets no CHECKSUMS line: the VM refuses it


# --- the command line: one clear line, no traceback ------------------------------------------------

def assert_one_line(proc, *words):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("labkit: ") and "Fix: " in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for w in words:
        assert w in lines[-1], lines[-1]


def test_cli_404_on_every_mirror(srv, tmp_path):
    lock_file = write_lock(tmp_path / "l.yaml", [
        file_entry("ok", "ok.txt", [srv.add("/ok.txt", SMALL)], SMALL),
        file_entry("kubernetes-node", "k8s/node.tgz", [srv.url + "/x/node.tgz", srv.url + "/y/node.tgz"], DATA)])
    dest = tmp_path / "b"
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest))
    assert_one_line(proc, "kubernetes-node", "not found on 2 mirror(s)", "HTTP 404", "check its urls")
    assert (dest / "ok.txt").read_bytes() == SMALL  # the other artifact still arrived


def test_cli_duplicate_names_and_escaping_paths_are_refused_before_any_download(srv, tmp_path):
    url = srv.add("/a.bin", SMALL)
    dup = write_lock(tmp_path / "dup.yaml", [file_entry("a", "a.bin", [url], SMALL),
                                             file_entry("a", "b.bin", [url], SMALL)])
    proc = invoke("bundle.fetch", "--lock", str(dup), "--dest", str(tmp_path / "b"))
    assert_one_line(proc, "lists name 'a' twice")
    escape = write_lock(tmp_path / "esc.yaml", [file_entry("a", "../../etc/evil", [url], SMALL)])
    proc = invoke("bundle.fetch", "--lock", str(escape), "--dest", str(tmp_path / "b"))
    assert_one_line(proc, "'a'", "escapes the bundle directory")
    assert not srv.seen and not (tmp_path / "b").exists()


def test_cli_unknown_only_name_lists_the_known_ones(srv, tmp_path):
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [srv.add("/a", SMALL)], SMALL)])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"), "--only", "nope")
    assert_one_line(proc, "no artifact named 'nope'", "use a name from: a")


def test_cli_allow_unpinned_is_loud(srv, tmp_path):
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("weave-manifest", "m.yaml", [srv.add("/m", SMALL)])])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert_one_line(proc, "unpinned", "weave-manifest", "bundle.lock")
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"), "--allow-unpinned")
    assert proc.returncode == 0, proc.stderr
    assert "UNPINNED: weave-manifest" in proc.stderr


def test_cli_second_run_says_it_skipped(srv, tmp_path):
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [srv.add("/a", SMALL)], SMALL)])
    args = ("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    assert invoke(*args).returncode == 0
    proc = invoke(*args)
    assert proc.returncode == 0 and "already present and intact" in proc.stdout


def test_cli_dry_run_lists_the_step_the_run_executes_and_downloads_nothing(srv, tmp_path):
    from tests import dryrun

    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "k8s/a.bin", [srv.add("/a", SMALL)], SMALL)])
    args = ("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"))
    dry = invoke(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert srv.seen == [] and not (tmp_path / "b").exists()
    assert "a: k8s/a.bin" in dryrun.described(dry.stdout, f"Fetching 1 artifacts into {tmp_path / 'b'}")
    real = invoke(*args)
    assert real.returncode == 0, real.stderr
    assert dryrun.planned(dry.stdout) == dryrun.ran(real.stdout) == [f"Fetching 1 artifacts into {tmp_path / 'b'}"]


def test_cli_ctrl_c_keeps_the_partial_download_and_exits_130(srv, tmp_path):
    url = srv.add("/slow.bin", DATA)
    srv.fault("/slow.bin", Fault(rate=300_000), times=0)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [url], DATA)])
    dest = tmp_path / "b"
    proc = subprocess.Popen([str(sys.executable.rsplit("/", 1)[0] + "/invoke"), "bundle.fetch", "--lock",
                             str(lock_file), "--dest", str(dest)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    deadline = time.monotonic() + 20
    while not ((dest / "a.bin.part").exists() and (dest / "a.bin.part").stat().st_size > 100_000):
        assert time.monotonic() < deadline, "the download never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "partial downloads" in err and "Traceback" not in err
    assert not (dest / "a.bin").exists() and (dest / "a.bin.part").stat().st_size > 100_000


# --- the disk: full, read-only (real tmpfs mounts) --------------------------------------------------

def test_full_disk_mid_download_one_line_and_the_valid_file_survives(srv, tmp_path, tmpfs):
    dest = tmpfs("2m")
    small_url, big_url = srv.add("/ok.txt", SMALL), srv.add("/big.bin", DATA)
    # no size in the lock: the free-space check cannot see it coming, the write itself fails
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("ok", "ok.txt", [small_url], SMALL),
                                                 file_entry("box-virtualbox", "boxes/big.box", [big_url], DATA,
                                                            size=False)])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest), "--workers", "1")
    assert_one_line(proc, "box-virtualbox", "no space left", "--dest")
    assert (dest / "ok.txt").read_bytes() == SMALL
    assert not (dest / "boxes/big.box").exists() and not (dest / "boxes/big.box.part").exists()


def test_known_sizes_that_do_not_fit_are_refused_before_downloading(srv, tmp_path, tmpfs):
    dest = tmpfs("1m")
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("big", "big.bin", [srv.add("/big", DATA)], DATA)])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest))
    assert_one_line(proc, "need 3.1 MB", "free some space")
    assert not srv.seen


def test_read_only_bundle_directory(srv, tmp_path, tmpfs):
    dest = tmpfs("1m")
    subprocess.run(["mount", "-o", "remount,ro", str(dest)], check=True)
    lock_file = write_lock(tmp_path / "l.yaml", [file_entry("a", "a.bin", [srv.add("/a", SMALL)], SMALL)])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest))
    assert_one_line(proc, "is not writable", "Read-only file system", "--dest")
    assert not srv.seen


def test_unwritable_subdirectory_names_the_artifact(srv, tmp_path, tmpfs):
    dest = tmpfs("1m")
    inner = tmpfs("1m")  # mounted read-only at <dest>/k8s below
    (dest / "k8s").mkdir()
    subprocess.run(["mount", "--bind", str(inner), str(dest / "k8s")], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(dest / "k8s")], check=True)
    try:
        lock_file = write_lock(tmp_path / "l.yaml", [file_entry("kubernetes-node", "k8s/a.bin",
                                                                [srv.add("/a", SMALL)], SMALL)])
        proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest))
        assert_one_line(proc, "kubernetes-node", "cannot write", "Read-only file system")
    finally:
        subprocess.run(["umount", str(dest / "k8s")], check=False)


def test_cli_takes_only_the_box_of_this_laptops_provider_unless_all_boxes(srv, tmp_path):
    vb, lv = b"virtualbox box" * 100, b"libvirt box" * 100
    lock_file = write_lock(tmp_path / "l.yaml", [
        file_entry("box-virtualbox", "boxes/vb.box", [srv.add("/vb", vb)], vb,
                   extra="  box: ubuntu/xenial64\n  provider: virtualbox"),
        file_entry("box-libvirt", "boxes/lv.box", [srv.add("/lv", lv)], lv,
                   extra="  box: generic/ubuntu1604\n  provider: libvirt")])
    dest = tmp_path / "b"
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest), env={"LABKIT_PROVIDER": "libvirt"})
    assert proc.returncode == 0, proc.stderr
    assert "Skipping box-virtualbox" in proc.stdout
    assert (dest / "boxes/lv.box").exists() and not (dest / "boxes/vb.box").exists()
    assert invoke("bundle.verify", "--lock", str(lock_file), "--dest", str(dest),
                  env={"LABKIT_PROVIDER": "libvirt"}).returncode == 0
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(dest), "--all-boxes")
    assert proc.returncode == 0 and (dest / "boxes/vb.box").read_bytes() == vb


def test_cli_unreachable_registry_is_one_line(tmp_path):
    from tests.conftest import free_port

    port = free_port()  # nothing listens there
    lock_file = write_lock(tmp_path / "l.yaml", ["- name: pause\n  kind: image\n"
                                                 f"  ref: 127.0.0.1:{port}/pause:3.1\n  path: images/pause.tar"])
    proc = invoke("bundle.fetch", "--lock", str(lock_file), "--dest", str(tmp_path / "b"), "--allow-unpinned")
    assert_one_line(proc, "pause: cannot reach", f"127.0.0.1:{port}", "connection refused", "--from")


# --- a registry (the fault server speaking the registry API's GETs) sending what it should not -------

SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
PORTAL = b"<html><head><title>Hotel Wi-Fi</title></head><body>Please accept the terms</body></html>\n"


def image_lock(tmp_path, srv, repo, digest=None):
    host = srv.url.split("//", 1)[1]
    return write_lock(tmp_path / f"{repo}.yaml", [f"- name: {repo}\n  kind: image\n  ref: {host}/labkit/{repo}:1\n"
                                                  + (f"  digest: {digest}\n" if digest else "")
                                                  + f"  path: images/{repo}.tar"])


def manifest(config: bytes, layers=()) -> bytes:
    import json

    doc = {"schemaVersion": 2, "mediaType": SCHEMA2, "layers": list(layers)}
    if config is not None:
        doc["config"] = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
                         "digest": "sha256:" + sha256(config)}
    return json.dumps(doc, indent=3).encode()


def test_cli_a_captive_portal_instead_of_the_registry_is_one_line(srv, tmp_path):
    srv.add("/v2/labkit/portal/manifests/1", PORTAL)
    proc = invoke("bundle.fetch", "--lock", str(image_lock(tmp_path, srv, "portal")), "--dest", str(tmp_path / "b"),
                  "--allow-unpinned")
    assert_one_line(proc, "portal: ", "not a manifest", "Hotel Wi-Fi", "captive portal", "log in to the network")
    # pinned by digest: the digest check comes first, so the page is never parsed
    srv.add("/v2/labkit/pinned/manifests/sha256:" + "a" * 64, PORTAL)
    proc = invoke("bundle.fetch", "--lock", str(image_lock(tmp_path, srv, "pinned", "sha256:" + "a" * 64)),
                  "--dest", str(tmp_path / "b"), "--allow-unpinned")
    assert_one_line(proc, "pinned: ", f"whose sha256 is sha256:{sha256(PORTAL)}", "captive portal")


def test_cli_a_manifest_without_its_config_is_one_line(srv, tmp_path):
    srv.add("/v2/labkit/noconf/manifests/1", manifest(None))
    proc = invoke("bundle.fetch", "--lock", str(image_lock(tmp_path, srv, "noconf")), "--dest", str(tmp_path / "b"),
                  "--allow-unpinned")
    assert_one_line(proc, "noconf: ", "lacks its config", "pin another image")


def test_cli_a_corrupt_registry_blob_is_blamed_on_the_registry_not_the_lock(srv, tmp_path):
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    srv.add("/v2/labkit/tiny/manifests/1", manifest(config))
    blob = srv.add("/v2/labkit/tiny/blobs/sha256:" + sha256(config), config)
    srv.fault(blob.split(srv.url, 1)[1], Fault(wrong=True), times=0)
    dest = tmp_path / "b"
    proc = invoke("bundle.fetch", "--lock", str(image_lock(tmp_path, srv, "tiny")), "--dest", str(dest),
                  "--allow-unpinned")
    assert_one_line(proc, "tiny: ", f"sent bytes for blob sha256:{sha256(config)[:12]}", "do not match that digest",
                    "run the same command again")
    assert "compare the pin" not in proc.stderr and not (dest / "images/tiny.tar").exists()
