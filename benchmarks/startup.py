#!/usr/bin/env python3
"""How long `invoke --list` takes, as a ratio to a bare `python -c "import invoke"` (goal: <= 1.5x).

Heavy libraries (kubernetes, docker, paramiko, rich, yaml) must be imported inside tasks, not when
the namespace loads. Prints the median of N runs of each.    usage: benchmarks/startup.py [N]
"""
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seconds(cmd):
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    bare_cmd = [sys.executable, "-c", "import invoke"]
    list_cmd = [sys.executable, "-m", "invoke", "--list"]
    seconds(list_cmd)  # warm the file cache
    # Interleaved, so load from other work on the machine hits both alike.
    pairs = [(seconds(bare_cmd), seconds(list_cmd)) for _ in range(runs)]
    bare = statistics.median(p[0] for p in pairs)
    listing = statistics.median(p[1] for p in pairs)
    print(f"python -c 'import invoke'  {bare * 1000:7.1f} ms  (median of {runs})")
    print(f"invoke --list              {listing * 1000:7.1f} ms")
    print(f"ratio                      {listing / bare:7.2f}x  (goal <= 1.5x)")


if __name__ == "__main__":
    main()
