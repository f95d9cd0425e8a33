"""The laptop checklist's expected busybox 1.31 answer is one verify's own parser reads as a healthy lookup
(busybox 1.29+ prints `Name:`/`Address:` pairs and no longer applies the search list: the full name)."""
from labkit.verify import parse
from tests.support.env import REPO

COMMAND = "nslookup kubernetes.default.svc.cluster.local"


def expected_output() -> str:
    lines = (REPO / "docs" / "laptop-checklist.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith(COMMAND))
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("  ") and line.strip():
            break
        block.append(line[2:].split("←")[0].rstrip())
    return "\n".join(block) + "\n"


def test_the_checklist_expects_the_full_name_and_busybox_131s_answer():
    found = parse.nslookup(expected_output())
    assert found.server == "10.96.0.10"
    assert found.addresses == ["10.96.0.1"]
    assert found.errors == ["Can't find kubernetes.default.svc.cluster.local: No answer"]  # the empty AAAA answer
