#!/usr/bin/env python3
"""The kit's `invoke vm.up` wall time against a raw `vagrant up` of the same box (goal <= 1.10x).

Same Vagrantfile, same settings, same box (the offline Debian test box under libvirt/QEMU, as in T2),
the box already installed, no provisioning (it would be the same work on both sides), the VM
destroyed before each run. One untimed warm-up first: the first `up` of a box uploads its image into
libvirt's pool, which would otherwise count against whichever side runs first. Then each round swaps
which side goes first, so machine load and caches hit both.
Needs what T2 needs (root, libvirtd, scripts/build-test-box).   usage: benchmarks/vm_up.py [ROUNDS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOX = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit-tests/debian-test-box/labkit-debian-test.box"


def timed(cmd, env):
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return time.perf_counter() - started


def bench_env() -> dict:
    """The T2 box under libvirt/QEMU, offline, no provisioning, an empty bundle; the box installed."""
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    (work / "lock.yaml").write_text("artifacts: []\ncount: 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update(LABKIT_PROVIDER="libvirt", LABKIT_BOXES__LIBVIRT="labkit/debian-test", LABKIT_VM__LIBVIRT_DRIVER="qemu",
               LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK="none", LABKIT_PROVISION="[]",
               LABKIT_BUNDLE__DIR=str(work / "bundle"), LABKIT_BUNDLE__LOCK=str(work / "lock.yaml"))
    subprocess.run(["vagrant", "box", "add", "--force", "--name", "labkit/debian-test", str(BOX)], check=True,
                   stdout=subprocess.DEVNULL)
    return env


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    env = bench_env()
    destroy = ["vagrant", "destroy", "--force"]
    raw_up, kit_up = ["vagrant", "up", "--provider=libvirt"], [sys.executable, "-m", "invoke", "vm.up"]
    raw, kit = [], []
    sides = [(raw_up, raw), (kit_up, kit)]
    try:
        timed(destroy, env)
        timed(raw_up, env)  # warm-up, not counted: uploads the box image into the storage pool
        for n in range(rounds):
            for cmd, times in (sides if n % 2 == 0 else sides[::-1]):
                timed(destroy, env)
                times.append(timed(cmd, env))
    finally:
        timed(destroy, env)
    r, k = statistics.median(raw), statistics.median(kit)
    print(f"vagrant up      {r:6.1f} s  (median of {rounds})")
    print(f"invoke vm.up    {k:6.1f} s")
    print(f"ratio           {k / r:6.2f}x  (goal <= 1.10x)")


if __name__ == "__main__":
    main()
