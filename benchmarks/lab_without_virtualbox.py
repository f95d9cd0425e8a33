#!/usr/bin/env python3
"""What `invoke lab` does on a laptop without VirtualBox (README's claim): how long until it stops, and
how many lines it prints (stdout, stderr). Also the same with a bad setting (LABKIT_VM__CPUS=1).

Runs the real command N times on this machine, with no VM state (an empty VAGRANT_DOTFILE_PATH) and no
LABKIT_* variables; prints the median time and the line counts.    usage: benchmarks/lab_without_virtualbox.py [N]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(env):
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "invoke", "lab"], cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, out


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env["VAGRANT_DOTFILE_PATH"] = tempfile.mkdtemp(prefix="labkit-bench-")
    for label, extra in (("no VirtualBox", {}), ("bad setting (LABKIT_VM__CPUS=1)", {"LABKIT_VM__CPUS": "1"})):
        results = [run({**env, **extra}) for _ in range(runs)]
        times = [t for t, _ in results]
        _, last = results[-1]
        print(f"invoke lab, {label}: median {statistics.median(times):.1f} s (min {min(times):.1f}, max "
              f"{max(times):.1f}, {runs} runs), exit {last.returncode}, {len(last.stdout.splitlines())} lines on "
              f"stdout, {len(last.stderr.splitlines())} on stderr")
        print("    last line: " + (last.stderr.strip().splitlines() or [""])[-1][:100])
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
