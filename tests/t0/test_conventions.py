"""T0: the conventions of the tools classroom users know, held for every task at once."""
from __future__ import annotations

import io
import os

import pytest

from labkit import ui
from labkit.errors import LabkitError
from labkit.tasks import suggestion
from labkit.tasks.verify import _section
from labkit.verify import report
from tests.support.tasks import all_tasks, namespace


def contexts():
    return {name: ctx for name, ctx in ((c.name, c) for c in namespace().to_contexts())}


def test_one_short_flag_per_option_the_same_in_every_task_and_never_h():
    by_option, by_letter = {}, {}
    for task, ctx in contexts().items():
        for arg in ctx.args.values():
            assert len(arg.nicknames) <= 1, (task, arg.names)
            for short in arg.nicknames:
                assert short.isalpha() and short != "h", f"{task} --{arg.names[0]} has short flag -{short}"
                by_option.setdefault(arg.names[0], set()).add(short)
                by_letter.setdefault(short, set()).add(arg.names[0])
    assert by_option["dry-run"] == {"d"}  # bundle.lock had -r
    assert all(len(s) == 1 for s in by_option.values()), by_option
    assert all(len(s) == 1 for s in by_letter.values()), by_letter


def test_whole_number_options_are_shown_as_int():
    ctx = contexts()
    assert ctx["bundle.serve"].help_for("--port")[0] == "-p INT, --port=INT"
    assert ctx["verify"].help_for("--section")[0] == "-s INT, --section=INT"
    assert ctx["bundle.fetch"].help_for("--workers")[0] == "-w INT, --workers=INT"
    assert "--host=STRING" == ctx["bundle.serve"].help_for("--host")[0]  # no -h: that is --help


def test_a_mistyped_task_or_option_gets_the_closest_name():
    ns = namespace()
    assert suggestion("verfy", ns) == ("labkit: there is no task 'verfy'. "
                                       "Fix: did you mean `invoke verify`? `invoke --list` shows every task")
    assert suggestion("bundle.fech", ns).startswith("labkit: there is no task 'bundle.fech'. Fix: did you mean "
                                                    "`invoke bundle.fetch`?")
    assert suggestion("xyzzy", ns) == "labkit: there is no task 'xyzzy'. Fix: `invoke --list` shows every task"
    assert suggestion("--sectoin", ns, contexts()["verify"]) == (
        "labkit: verify has no option --sectoin. Fix: did you mean --section? `invoke verify --help` lists its options")


@pytest.mark.parametrize("encoding", ["cp1252", "cp1251", "ascii"])
def test_output_in_a_code_page_never_fails_and_stays_readable(encoding):
    ui.never_fail_on_encoding()  # registers the error handler the streams use
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding, errors="labkit-ascii")
    stream.write("✓ client → inv:80 ×20 … Łódź\n")
    stream.flush()
    text = raw.getvalue().decode(encoding)
    # What the code page has stays (cp1252 has × and …); what it lacks becomes ASCII, an unknown letter '?'.
    expected = {"cp1252": "ok client -> inv:80 ×20 … ?ód?\n", "cp1251": "ok client -> inv:80 x20 … ??d?\n",
                "ascii": "ok client -> inv:80 x20 ... ??d?\n"}
    assert text == expected[encoding]


def test_a_fix_is_printed_in_full_below_the_table_and_lines_fit_80_columns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    fix = "install VirtualBox 6.1 or 7.0 from the USB stick or https://www.virtualbox.org/wiki/Downloads, " \
          "or set LABKIT_PROVIDER=libvirt"
    ui.table("labkit doctor", ["check", "result", "detail", "fix"], [
        ["provider", "fail", "VirtualBox is not installed (no VBoxManage found) " * 3, fix],
        ["memory", "ok", "22.4 GiB free", ""]])
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert "https://www.virtualbox.org/wiki/Downloads," in out  # a URL is never cut
    assert " ".join(out.split("Fix:\n", 1)[1].split()) == f"provider: {fix}"
    assert out.splitlines()[1].split() == ["check", "result", "detail"]


@pytest.mark.parametrize("make, problem", [
    (lambda tmp: "", "was given no file name"),
    (lambda tmp: str(tmp), "is a directory"),
    (lambda tmp: str(tmp / "missing" / "r.json"), "missing does not exist"),
    (lambda tmp: str(tmp / "afile" / "r.json"), "afile is not a directory"),
    (lambda tmp: str(tmp / "afile" / "deeper" / "r.json"), "deeper is not a directory"),
    (lambda tmp: "/proc/r.json", "cannot write in /proc"),
])
def test_a_report_path_that_cannot_be_written_is_refused_first(tmp_path, make, problem):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(LabkitError) as err:
        report.check_writable(make(tmp_path))
    assert problem in err.value.message
    assert not (tmp_path / "missing").exists()  # nothing created on the way
    report.check_writable(tmp_path / "r.json")  # a good path passes and leaves nothing behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_section_takes_the_label_verify_prints():
    assert _section("section", "3-4") == 3 and _section("section", "4") == 4 and _section("section", "8") == 8
    for bad in ("9", "2", "3-5", "abc"):
        with pytest.raises(LabkitError):
            _section("section", bad)


def test_statuses_are_coloured_on_a_terminal():
    assert ui._style("fail") == ui._style("✗ failed: no route") == "bold red"
    assert ui._style("ok") == "green" and ui._style("warn") == "yellow" and ui._style("VirtualBox") is None


def test_every_task_is_found_from_inside_the_package(repo):
    # `invoke` run in labkit/ imports labkit/tasks as `tasks`: it must offer the project's tasks.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import tasks; print(sorted(tasks.ns.task_names))"],
                         cwd=repo / "labkit", capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr
    assert set(eval(out.stdout)) == set(dict(all_tasks(namespace())))
