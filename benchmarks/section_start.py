#!/usr/bin/env python3
"""`invoke section.start N` restoring an existing section snapshot, against a raw `vagrant snapshot
restore` of the same snapshot (the ratio README may quote).

The offline Debian test box under libvirt/QEMU, as in T2, without provisioning (the restore is what
is measured, not what the VM holds). `invoke section.start 1` first creates the VM and saves snapshot
section-1 (not timed); then each round restores it both ways, alternating which side goes first.
Needs what T2 needs (root, libvirtd, scripts/build-test-box); run it under the T2 lock:
    flock /tmp/labkit-t2.lock .venv/bin/python benchmarks/section_start.py [ROUNDS]
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


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    (work / "lock.yaml").write_text("artifacts: []\ncount: 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update(LABKIT_PROVIDER="libvirt", LABKIT_BOXES__LIBVIRT="labkit/debian-test", LABKIT_VM__LIBVIRT_DRIVER="qemu",
               LABKIT_VM__LIBVIRT_MANAGEMENT_NETWORK="none", LABKIT_PROVISION="[]",
               LABKIT_BUNDLE__DIR=str(work / "bundle"), LABKIT_BUNDLE__LOCK=str(work / "lock.yaml"))
    subprocess.run(["vagrant", "box", "add", "--force", "--name", "labkit/debian-test", str(BOX)], check=True,
                   stdout=subprocess.DEVNULL)
    kit = [sys.executable, "-m", "invoke", "section.start", "1"]
    raw = ["vagrant", "snapshot", "restore", "--no-provision", "ubuntu", "section-1"]
    times = {"kit": [], "raw": []}
    sides = [("raw", raw), ("kit", kit)]
    try:
        timed(["vagrant", "destroy", "--force"], env)
        created = timed(kit, env)  # creates the VM and saves section-1
        for n in range(rounds):
            for side, cmd in (sides if n % 2 == 0 else sides[::-1]):
                times[side].append(timed(cmd, env))
    finally:
        timed(["vagrant", "destroy", "--force"], env)
        (ROOT / ".labkit" / "sections" / "section-1.json").unlink(missing_ok=True)
    r, k = statistics.median(times["raw"]), statistics.median(times["kit"])
    print(f"section.start 1, first (create + save)  {created:6.1f} s")
    print(f"vagrant snapshot restore                {r:6.1f} s  (median of {rounds})")
    print(f"invoke section.start 1 (restore)        {k:6.1f} s")
    print(f"ratio                                   {k / r:6.2f}x")


if __name__ == "__main__":
    main()
