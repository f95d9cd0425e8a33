"""The runner: prerequisites become skips naming the root failure, checks overlap, timeouts hold."""
import threading
import time

from labkit.verify import runner
from labkit.verify.model import FAILED, PASSED, SKIPPED, LabCheck, failed, passed
from labkit.verify.hints import make


def check(cid, outcome=None, needs=(), timeout=5.0, skip=None, run=None):
    return LabCheck(cid, 3, f"title of {cid}", "here", "there", run or (lambda t: outcome or passed("ok")),
                 tuple(needs), timeout=timeout, skip=skip)


def by_id(results):
    return {r.check.id: r for r in results}


def test_skips_name_the_root_failure_not_the_skipped_link():
    broken = failed("no route", make("route-missing", cidr="10.32.0.0/12", node="ubuntu"))
    results = by_id(runner.run([
        check("route", broken),
        check("lookup", needs=["route"]),
        check("http", needs=["lookup", "unrelated"]),
        check("unrelated"),
    ]))
    assert results["route"].status == FAILED
    assert results["lookup"].outcome.blocked_by == "route"
    assert results["http"].status == SKIPPED
    assert results["http"].outcome.blocked_by == "route"  # through the skipped lookup
    assert results["http"].outcome.detail == "needs: title of route"
    assert results["unrelated"].status == PASSED


def test_results_keep_the_plan_order_and_report_each_as_it_ends():
    seen = []
    plan = [check("b", needs=["a"]), check("a"), check("c", skip="pod c is not Ready")]
    results = runner.run(plan, on_result=lambda r: seen.append(r.check.id))
    assert [r.check.id for r in results] == ["b", "a", "c"]
    assert seen.index("a") < seen.index("b")
    assert by_id(results)["c"].outcome.detail == "pod c is not Ready"
    assert by_id(results)["c"].outcome.blocked_by is None


def test_a_planned_skip_yields_to_a_failed_prerequisite():
    results = by_id(runner.run([check("dep", failed("x", make("unexpected", error="x"))),
                                check("probe", needs=["dep"], skip="pod is not Ready")]))
    assert results["probe"].outcome.blocked_by == "dep"


def test_independent_checks_run_at_the_same_time():
    both = threading.Barrier(2, timeout=5)  # each waits for the other: only passes if they overlap

    def meet(t):
        both.wait()
        return passed("met")

    results = runner.run([check("x", run=meet), check("y", run=meet)])
    assert [r.status for r in results] == [PASSED, PASSED]


def test_a_check_that_overruns_its_timeout_is_failed_and_not_waited_for():
    release = threading.Event()

    def stuck(t):
        release.wait(30)
        return passed("too late")

    started = time.monotonic()
    try:
        results = by_id(runner.run([check("stuck", run=stuck, timeout=0.2), check("after", needs=["stuck"]),
                                    check("quick")], ))
        finished = time.monotonic() - started
    finally:
        release.set()
    assert results["stuck"].status == FAILED and results["stuck"].outcome.hint.key == "timeout"
    assert results["stuck"].outcome.detail == "no answer within 0.2s"
    assert results["after"].status == SKIPPED and results["quick"].status == PASSED
    assert finished < 25  # the runner returned while the stuck check was still blocked


def test_exceptions_and_empty_answers_become_failures():
    def boom(t):
        raise ValueError("unexpected answer")

    results = by_id(runner.run([check("boom", run=boom), check("none", run=lambda t: None)]))
    assert results["boom"].outcome.hint.key == "unexpected"
    assert "ValueError: unexpected answer" in results["boom"].outcome.detail
    assert results["none"].status == FAILED


def test_the_timeout_is_handed_to_the_check():
    got = []
    runner.run([check("t", run=lambda t: got.append(t) or passed(), timeout=7.5)])
    assert got == [7.5]


def test_a_cycle_is_reported_not_hung():
    results = by_id(runner.run([check("a", needs=["b"]), check("b", needs=["a"])]))
    assert {r.status for r in results.values()} == {FAILED}
    assert {r.outcome.hint.key for r in results.values()} == {"unexpected"}
    assert "a cycle in the prerequisites of a" in results["a"].outcome.hint.cause
