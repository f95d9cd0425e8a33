#!/usr/bin/env python3
"""What the kit adds to a two-node bring-up: `invoke vm.up` of master + 1 worker against a raw `vagrant up`
of the same two machines (goal <= 1.05x).

Two VMs under software emulation cannot boot faster than physics allows, so both sides boot the same two:
same Vagrantfile, same settings (LABKIT_WORKERS=1: `ubuntu` and `worker-1`), same box (the offline Debian
test box under libvirt/QEMU, as in T2), the box already installed, no provisioning (the same work on both
sides). The raw side is `vagrant up --provider=libvirt`, which brings up every machine of the Vagrantfile in
parallel (vagrant-libvirt allows it; the kit's vm.up runs one `vagrant up --parallel` of both). Every VM is
destroyed before each run; one untimed warm-up first (it uploads the box image into libvirt's pool); then
each round swaps which side goes first, so machine load and caches hit both.
Needs what T2 needs (root, libvirtd, scripts/build-test-box).
usage (from a fresh clone, after scripts/host-setup): .venv/bin/python benchmarks/vm_up_workers.py [ROUNDS]
"""
import statistics
import sys

from vm_up import bench_env, timed

RAW_UP = ["vagrant", "up", "--provider=libvirt"]
KIT_UP = [sys.executable, "-m", "invoke", "vm.up"]
DESTROY = ["vagrant", "destroy", "--force"]


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    env = {**bench_env(), "LABKIT_WORKERS": "1"}  # the Vagrantfile and the kit both see master + worker-1
    raw, kit = [], []
    sides = [(RAW_UP, raw), (KIT_UP, kit)]
    try:
        timed(DESTROY, env)
        timed(RAW_UP, env)  # warm-up, not counted
        for n in range(rounds):
            for cmd, times in (sides if n % 2 == 0 else sides[::-1]):
                timed(DESTROY, env)
                times.append(timed(cmd, env))
    finally:
        timed(DESTROY, env)
    r, k = statistics.median(raw), statistics.median(kit)
    print(f"vagrant up (ubuntu + worker-1)      {r:6.1f} s  (median of {rounds})")
    print(f"invoke vm.up (ubuntu + worker-1)    {k:6.1f} s")
    print(f"ratio                               {k / r:6.2f}x  (goal <= 1.05x)")


if __name__ == "__main__":
    main()
