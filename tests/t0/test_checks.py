"""The one check model: statuses, the scheduler (needs, skip reasons, crashes, overruns, order) and the JSON shape."""
import threading

import pytest

from labkit import checks
from labkit.checks import FAIL, PASS, SKIP, WARN, Check


def const(result):
    return lambda timeout: result


def test_status_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="pass, warn, fail, skip"):
        checks.Result("passed")


def test_a_failure_skips_its_dependants_naming_the_root_cause():
    order = []

    def note(c):
        order.append(c.check.id)

    out = checks.run([
        Check("a", "VM running", const(checks.failed("stopped", "the VM is off", "invoke vm.up"))),
        Check("b", "API answers", const(checks.passed()), needs=("a",)),
        Check("c", "pods run", const(checks.passed()), needs=("b",)),
        Check("d", "unrelated", const(checks.passed("fine"))),
    ], on_result=note)
    by = {c.check.id: c for c in out}
    assert [c.check.id for c in out] == ["a", "b", "c", "d"]
    assert by["a"].status == FAIL and by["a"].result.fix == "invoke vm.up"
    assert by["b"].result == checks.skipped("needs: VM running", blocked_by="a")
    # the skip two levels down names the check that failed, not the skipped one between
    assert by["c"].result.blocked_by == "a" and by["c"].result.detail == "needs: VM running"
    assert by["d"].status == PASS
    assert sorted(order) == ["a", "b", "c", "d"]


def test_a_warning_does_not_block_and_a_planned_skip_keeps_its_reason():
    out = checks.run([
        Check("a", "memory", const(checks.warned("3 GiB", "tight", "close the browser"))),
        Check("b", "after", const(checks.passed()), needs=("a",)),
        Check("c", "pod web", const(checks.passed()), skip="pod web is not Ready"),
        Check("d", "after c", const(checks.passed()), needs=("c",), skip="also planned"),
    ])
    assert [c.status for c in out] == [WARN, PASS, SKIP, SKIP]
    assert out[2].result.detail == "pod web is not Ready"
    assert out[3].result.detail == "needs: pod web (skipped); also planned"


def test_a_check_that_raises_or_returns_nothing_is_its_own_failure():
    def boom(timeout):
        raise KeyError("metadata")

    out = checks.run([Check("a", "reads pods", boom), Check("b", "returns none", lambda t: None),
                      Check("c", "after", const(checks.passed()), needs=("a",))])
    assert out[0].status == FAIL and "KeyError: 'metadata'" in out[0].result.detail
    assert out[0].result.key == "unexpected" and out[0].result.fix
    assert out[1].status == FAIL and "no result (NoneType)" in out[1].result.detail
    assert out[2].status == SKIP


def test_an_overrun_is_abandoned_with_its_timeout_named(monkeypatch):
    monkeypatch.setattr(checks, "GRACE", 0.05)
    release = threading.Event()
    out = checks.run([Check("slow", "stuck ssh", lambda t: release.wait(5) and checks.passed(), timeout=0.1),
                      Check("next", "after", const(checks.passed()), needs=("slow",))],
                     unexpected=lambda c, error: checks.failed(error, key="timeout"))
    release.set()
    assert out[0].result == checks.failed("no answer within 0.1s", key="timeout")
    assert out[1].status == SKIP


def test_workers_run_independent_checks_at_once_and_one_worker_keeps_the_order():
    both = threading.Barrier(2, timeout=5)

    def meet(timeout):
        both.wait()  # deadlocks (BrokenBarrierError after 5 s → failure) unless both run concurrently
        return checks.passed()

    out = checks.run([Check("a", "a", meet), Check("b", "b", meet)], workers=2)
    assert [c.status for c in out] == [PASS, PASS]

    started = []

    def mark(name):
        def run(timeout):
            started.append(name)
            return checks.passed()
        return run

    checks.run([Check(n, n, mark(n)) for n in "edcba"], workers=1)
    assert started == list("edcba")


def test_a_cycle_and_a_duplicate_id_are_said_plainly():
    out = checks.run([Check("a", "a", const(checks.passed()), needs=("b",)),
                      Check("b", "b", const(checks.passed()), needs=("a",))])
    assert all(c.status == FAIL and "cycle" in c.result.detail for c in out)
    with pytest.raises(ValueError, match="two checks share an id: a"):
        checks.run([Check("a", "a", const(checks.passed())), Check("a", "b", const(checks.passed()))])


def test_one_json_shape():
    out = checks.run([Check("a", "VM running", const(checks.failed("stopped", "off", "invoke vm.up", key="vm-down"))),
                      Check("b", "API", const(checks.passed()), needs=("a",))])
    doc = checks.as_json(out, kind="verify", host="lab-01")
    assert doc["schema"] == "labkit-checks/1" and doc["kind"] == "verify" and doc["host"] == "lab-01"
    assert doc["summary"] == {"checks": 2, "pass": 0, "warn": 0, "fail": 1, "skip": 1, "ok": False}
    a, b = doc["checks"]
    assert a["status"] == "fail" and a["cause"] == "off" and a["fix"] == "invoke vm.up" and a["key"] == "vm-down"
    assert b == {"id": "b", "title": "API", "status": "skip", "seconds": 0.0, "detail": "needs: VM running",
                 "blocked_by": "a"}
    assert checks.first_problem(out).check.id == "a"
