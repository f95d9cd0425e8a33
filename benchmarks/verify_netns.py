#!/usr/bin/env python3
"""How long does `verify` take on a healthy lab? Figures from the namespace pod network (root needed).

    sudo .venv/bin/python benchmarks/verify_netns.py [runs]

Prints the time to build the network, then per run the wall time of all checks and the slowest
checks. The live lab adds the API round trips and SSH/kubectl exec latency on top of these
figures (see docs/verify.md); this measures verify's own overhead and real probe traffic.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import verify_transcript as tx  # noqa: E402
from verify_podnet import BusyboxNetns, PodNetwork  # noqa: E402

from labkit import settings  # noqa: E402
from labkit.backends import Netns  # noqa: E402
from labkit.checks import PASS  # noqa: E402
from labkit.verify import run_lab  # noqa: E402
from labkit.verify.model import Lab  # noqa: E402
from labkit.verify.plan import Where  # noqa: E402


def main(runs: int) -> int:
    lab = Lab.from_settings(settings.load(REPO, {}))
    pods = {"coredns": ("coredns-5c98db65d4-jklpz", "10.32.0.2"), "web": ("web", tx.WEB_IP),
            "client": ("client", tx.CLIENT_IP), "inv-a": (tx.INV_A, tx.INV_A_IP), "inv-b": (tx.INV_B, tx.INV_B_IP)}
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
        net = PodNetwork(uuid.uuid4().hex[:6], Path(tmp), REPO, lab, pods, tx.SERVICE_IP)
        try:
            started = time.monotonic()
            net.build()
            print(f"pod network built in {time.monotonic() - started:.2f}s")
            where = Where(node=Netns(net.node), client=BusyboxNetns(net.ns("client")))
            walls = []
            for i in range(runs):
                started = time.monotonic()
                results = run_lab(lab, tx.snapshot(), where)
                walls.append(time.monotonic() - started)
                bad = [r.check.id for r in results if r.status != PASS]
                slowest = sorted(results, key=lambda r: -r.seconds)[:3]
                print(f"run {i + 1}: {len(results)} checks in {walls[-1]:.2f}s"
                      f"{'' if not bad else f', not pass: {bad}'}; slowest: "
                      + ", ".join(f"{r.check.id} {r.seconds:.2f}s" for r in slowest))
            print(f"wall time over {runs} runs: min {min(walls):.2f}s, median {statistics.median(walls):.2f}s, "
                  f"max {max(walls):.2f}s")
        finally:
            net.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
