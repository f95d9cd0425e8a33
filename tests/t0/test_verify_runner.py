"""verify on the one scheduler (labkit.checks.run): prerequisites become skips naming the root failure,
checks overlap, timeouts hold, and a crash or an overrun gets verify's own hint."""
import threading
import time

from labkit.checks import FAIL, PASS, SKIP
from labkit.verify import run as verify_run
from labkit.verify.model import LabCheck, failed, passed
from labkit.verify.hints import make


def check(cid, outcome=None, needs=(), timeout=5.0, skip=None, run=None):
    return LabCheck(cid, f"title of {cid}", run or (lambda t: outcome or passed("ok")), tuple(needs),
                    timeout=timeout, skip=skip, section=3, source="here", target="there")


def by_id(results):
    return {r.check.id: r for r in results}


def test_skips_name_the_root_failure_not_the_skipped_link():
    broken = failed("no route", make("route-missing", cidr="10.32.0.0/12", node="ubuntu"))
    results = by_id(verify_run([
        check("route", broken),
        check("lookup", needs=["route"]),
        check("http", needs=["lookup", "unrelated"]),
        check("unrelated"),
    ]))
    assert results["route"].status == FAIL
    assert results["lookup"].result.blocked_by == "route"
    assert results["http"].status == SKIP
    assert results["http"].result.blocked_by == "route"  # through the skipped lookup
    assert results["http"].result.detail == "needs: title of route"
    assert results["unrelated"].status == PASS


def test_results_keep_the_plan_order_and_report_each_as_it_ends():
    seen = []
    plan = [check("b", needs=["a"]), check("a"), check("c", skip="pod c is not Ready")]
    results = verify_run(plan, on_result=lambda r: seen.append(r.check.id))
    assert [r.check.id for r in results] == ["b", "a", "c"]
    assert seen.index("a") < seen.index("b")
    assert by_id(results)["c"].result.detail == "pod c is not Ready"
    assert by_id(results)["c"].result.blocked_by is None


def test_a_planned_skip_yields_to_a_failed_prerequisite():
    results = by_id(verify_run([check("dep", failed("x", make("unexpected", error="x"))),
                                check("probe", needs=["dep"], skip="pod is not Ready")]))
    assert results["probe"].result.blocked_by == "dep"


def test_independent_checks_run_at_the_same_time():
    both = threading.Barrier(2, timeout=5)  # each waits for the other: only passes if they overlap

    def meet(t):
        both.wait()
        return passed("met")

    results = verify_run([check("x", run=meet), check("y", run=meet)])
    assert [r.status for r in results] == [PASS, PASS]


def test_a_check_that_overruns_its_timeout_is_failed_and_not_waited_for():
    release = threading.Event()

    def stuck(t):
        release.wait(30)
        return passed("too late")

    started = time.monotonic()
    try:
        results = by_id(verify_run([check("stuck", run=stuck, timeout=0.2), check("after", needs=["stuck"]),
                                    check("quick")], ))
        finished = time.monotonic() - started
    finally:
        release.set()
    assert results["stuck"].status == FAIL and results["stuck"].result.key == "timeout"
    assert results["stuck"].result.detail == "no answer within 0.2s"
    assert results["after"].status == SKIP and results["quick"].status == PASS
    assert finished < 25  # the runner returned while the stuck check was still blocked


def test_exceptions_and_empty_answers_become_failures():
    def boom(t):
        raise ValueError("unexpected answer")

    results = by_id(verify_run([check("boom", run=boom), check("none", run=lambda t: None)]))
    assert results["boom"].result.key == "unexpected"
    assert "ValueError: unexpected answer" in results["boom"].result.detail
    assert results["none"].status == FAIL


def test_the_timeout_is_handed_to_the_check():
    got = []
    verify_run([check("t", run=lambda t: got.append(t) or passed(), timeout=7.5)])
    assert got == [7.5]


def test_a_cycle_is_reported_not_hung():
    results = by_id(verify_run([check("a", needs=["b"]), check("b", needs=["a"])]))
    assert {r.status for r in results.values()} == {FAIL}
    assert {r.result.key for r in results.values()} == {"unexpected"}
    assert "a cycle in the prerequisites of a" in results["a"].result.cause
