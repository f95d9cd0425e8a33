"""verify: prove routing and DNS from the node and the pods, the way lab 7 checks them by hand."""
from __future__ import annotations

from labkit.tasks._common import labtask, settings


def _section(name: str, value) -> int:
    """--section N, or a group label as verify's own table prints it (3-4)."""
    from labkit.errors import LabkitError
    from labkit.verify.model import SECTION_LABEL, section_group

    text = str(value).strip()
    for number, label in SECTION_LABEL.items():
        if text == label:
            return number
    if text.isdigit() and section_group(int(text)) in SECTION_LABEL:
        return int(text)
    raise LabkitError(f"there is no section '{value}' to verify", "use --section 3, 4, 5, 6, 7 or 8 (3-4 is one group)")


@labtask(convert={"section": _section}, help={
    "section": "only the checks of lab section N (3-8; 3 and 4 are one group, 3-4), plus what they stand on",
    "json": "also write a machine-readable report to this file (for an instructor collecting a room's results)",
})
def verify(c, section=0, json=None):
    """Check the live lab like an instructor: cluster, networking, pods, deployment, Service. Exit 0 only if all pass."""
    import datetime
    import time
    from concurrent.futures import ThreadPoolExecutor

    from invoke import Exit

    from labkit import ui
    from labkit.verify import from_api, report, run_lab, where_for
    from labkit.verify.model import SECTION_LABEL, Lab, section_group

    if json is not None:
        report.check_writable(json)  # before any work: a bad path is one line, not a traceback at the end
    s = settings(c)
    lab = Lab.from_settings(s)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    started = time.monotonic()
    where = where_for(s)
    try:
        with ui.step("Checking the lab like lab 7 does") as st, ThreadPoolExecutor(max_workers=2) as pool:
            # Open the SSH connection while the kubernetes client loads (its import alone takes seconds).
            pool.submit(where.node.run, ["true"], 20)
            snapshot = from_api.fetch(s, lab)
            if snapshot.problem:
                st.log("the API server did not answer; the table says why")
            results = run_lab(lab, snapshot, where, section or None)
            st.note = f"{len(results)} checks"
            if not report.all_passed(results):
                st.outcome = "failed"
    finally:
        for backend in (where.node, *where.nodes.values()):
            backend.close()
    seconds = time.monotonic() - started
    data = report.as_json(results, lab, seconds, started_at, [SECTION_LABEL[section_group(section)]] if section else None)
    if json is not None:  # the report first: printing can fail (a closed pipe), the file must not be lost
        report.write_json(json, data)
    report.show(results, seconds)
    if json is not None:
        ui.say(f"Report written to {json}")
    from labkit.room.client import send  # to the instructor's room, if this laptop joined one (class.join)
    send(s.root, "verify", data)
    if not report.all_passed(results):
        raise Exit(code=1)
