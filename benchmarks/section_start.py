#!/usr/bin/env python3
"""`invoke section.start N` restoring an existing section snapshot, against a raw `vagrant snapshot
restore` of the same snapshot (the ratio README may quote).

The offline Debian test box under libvirt/QEMU, as in T2, without provisioning (the restore is what
is measured, not what the VM holds). `invoke section.start 1` first creates the VM and saves snapshot
section-1 (not timed); then each round restores it both ways, alternating which side goes first.
Needs what T2 needs (root, libvirtd, scripts/build-test-box); run it under the T2 lock:
    flock /tmp/labkit-t2.lock .venv/bin/python benchmarks/section_start.py [ROUNDS]
"""
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vm_up import ROOT, bench_env, timed  # noqa: E402  (the same test box and timing as vm_up.py)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    env = bench_env()
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
