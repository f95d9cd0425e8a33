#!/usr/bin/env python3
"""`invoke vm.up` wall time for master + 1 worker against master alone (goal: well under 2x).

Under libvirt, vm.up brings every node up in one parallel `vagrant up`, so a second VM should cost
far less than a second boot. Same box and settings as benchmarks/vm_up.py (the offline T2 box under
libvirt/QEMU, box installed, no provisioning), every VM destroyed before each run, one untimed
warm-up of the pair first, then the two sides alternate which goes first.
Needs what T2 needs (root, libvirtd, scripts/build-test-box).   usage: benchmarks/vm_up_workers.py [ROUNDS]
"""
import statistics
import sys

from vm_up import bench_env, timed

KIT_UP = [sys.executable, "-m", "invoke", "vm.up"]
DESTROY = [sys.executable, "-m", "invoke", "vm.destroy"]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    base = bench_env()
    alone, pair = {**base, "LABKIT_WORKERS": "0"}, {**base, "LABKIT_WORKERS": "1"}
    times = {"alone": [], "pair": []}
    sides = [("alone", alone), ("pair", pair)]
    try:
        timed(DESTROY, pair)
        timed(KIT_UP, pair)  # warm-up, not counted: uploads the box image into the storage pool
        for n in range(rounds):
            for side, env in (sides if n % 2 == 0 else sides[::-1]):
                timed(DESTROY, pair)  # the pair's settings name both nodes: nothing is left behind
                times[side].append(timed(KIT_UP, env))
    finally:
        timed(DESTROY, pair)
    a, p = statistics.median(times["alone"]), statistics.median(times["pair"])
    print(f"vm.up master alone        {a:6.1f} s  (median of {rounds})")
    print(f"vm.up master + 1 worker   {p:6.1f} s")
    print(f"ratio                     {p / a:6.2f}x  (goal: well under 2x)")


if __name__ == "__main__":
    main()
