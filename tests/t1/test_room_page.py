"""T1: the room's page in real headless Chromium (Debian's chromium + chromedriver, driven by selenium, offline).

Set LABKIT_ROOM_SCREENSHOT=docs/room-page.png to refresh README's screenshot from this test.
"""
from __future__ import annotations

import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, need, need_binary
from tests.t1.room_support import DOCTOR_FAIL, DOCTOR_OK, ClassServe, envelope, seat

pytestmark = pytest.mark.t1

XSS = "<img src=x onerror=alert(1)>"


def verify_report(section: str, status: str) -> dict:
    hint = {"cause": "the node has no route for the pod range", "fix": "invoke vm.provision"} if status == "failed" else None
    return {"schema": "labkit-verify/1", "sections": [section],
            "checks": [{"id": "net.route", "section": section, "title": "pod route on the node", "status": status,
                        "detail": "no route for 10.32.0.0/12" if status == "failed" else "ok", "hint": hint}]}


@pytest.fixture
def browser(tmp_path):
    chromium, driver = need_binary("chromium"), need_binary("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need(False, "selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,640"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    b = webdriver.Chrome(service=Service(driver), options=options)
    yield b
    b.quit()


def wait_for(what, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        found = what()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.05)


def cell(browser, seat_id: str, col: str):
    """The class of one grid cell (read in the page in one go: the grid may be rebuilt meanwhile)."""
    return browser.execute_script(
        "const td = document.querySelector(`tr[data-seat='${arguments[0]}'] td[data-col='${arguments[1]}']`);"
        "return td ? td.className : null;", seat_id, col)


def test_the_page_shows_the_room_live_escaped_and_exports_csv(browser, tmp_path):
    from selenium.webdriver.common.by import By

    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        browser.get(srv.page_url())
        wait_for(lambda: browser.find_element(By.ID, "empty").is_displayed())

        posted = time.monotonic()
        assert srv.post(envelope(seat(1), name=XSS, report=DOCTOR_FAIL)).status_code == 201
        wait_for(lambda: cell(browser, seat(1), "doctor") == "cell fail", timeout=2.0)  # live within 2 s
        delay = time.monotonic() - posted
        name = browser.find_element(By.CSS_SELECTOR, f'tr[data-seat="{seat(1)}"] th.name')
        assert name.text == XSS  # shown as text ...
        assert browser.find_elements(By.CSS_SELECTOR, "#seats img") == []  # ... never as an element
        assert browser.execute_script("return document.title") == "labkit room"
        # hover text and the click panel carry the first failing check and its hint
        doctor = browser.find_element(By.CSS_SELECTOR, f'tr[data-seat="{seat(1)}"] td[data-col="doctor"]')
        assert doctor.get_attribute("title") == "memory — 3.1 GiB available — close other programs"
        doctor.click()
        assert browser.find_element(By.ID, "detail-hint").text == "close other programs"
        first_report = browser.find_element(By.ID, "detail-report").text
        assert first_report.startswith("report #1 of ") and ", fail since " in first_report

        assert srv.post(envelope(seat(1), name=XSS, report=DOCTOR_OK)).status_code == 201
        wait_for(lambda: cell(browser, seat(1), "doctor") == "cell pass", timeout=2.0)  # changes colour
        # the open panel follows the cell: the report that decided it now, and when (issue 25, defect 8)
        wait_for(lambda: browser.find_element(By.ID, "detail-title").text.endswith("doctor: pass"))
        assert browser.find_element(By.ID, "detail-report").text.startswith("report #2 of ")
        assert browser.find_element(By.ID, "detail-check").text == "— (nothing failed)"
        assert browser.find_element(By.ID, "detail-found").text == "—"
        colours = {c: browser.execute_script("return getComputedStyle(arguments[0]).backgroundColor",
                                             browser.find_element(By.CSS_SELECTOR, f'td[data-col="doctor"].{c}'))
                   for c in ("pass",)}
        assert colours["pass"] == "rgb(143, 209, 143)"

        srv.post(envelope(seat(2), name="Bruno", kind="verify", report=verify_report("5", "failed")))
        srv.post(envelope(seat(3), name="Chen", kind="verify", report=verify_report("3-4", "passed")))
        wait_for(lambda: cell(browser, seat(3), "4") == "cell pass")
        assert cell(browser, seat(2), "5") == "cell fail"
        counts = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#counts td")][1:]
        assert counts[0] == "1 pass" and counts[5] == "1 fail" and counts[3] == counts[4] == "1 pass"

        browser.find_element(By.ID, "minutes").clear()
        browser.find_element(By.ID, "minutes").send_keys("0")
        browser.find_element(By.ID, "needs-help").click()
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#seats tr")) == 1)
        assert browser.find_element(By.CSS_SELECTOR, "#seats tr").get_attribute("data-seat") == seat(2)
        browser.find_element(By.ID, "needs-help").click()
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#seats tr")) == 3)

        shot = os.environ.get("LABKIT_ROOM_SCREENSHOT")
        if shot:
            assert browser.save_screenshot(str(REPO / shot))

        # the token is in the fragment only: no link, no attribute carries it (exports are fetched with a header)
        assert srv.token not in browser.execute_script(
            "return [...document.querySelectorAll('[href],[src]')].map(e => e.getAttribute('href') || "
            "e.getAttribute('src')).join(' ')")
        browser.find_element(By.ID, "export-csv").click()
        csv = wait_for(lambda: [p for p in (tmp_path / "downloads").glob("room*.csv")])[0]
        lines = wait_for(lambda: Path(csv).read_text().splitlines())
        assert lines[0].startswith("name,host,last_seen_utc,doctor") and len(lines) == 4
        assert any(line.startswith(XSS + ",") for line in lines)
        logs = browser.get_log("browser")
        assert not [entry for entry in logs if "alert" in entry.get("message", "")]
        print(f"page update delay after a report: {delay:.2f} s")
    finally:
        srv.stop()


def test_the_page_without_the_token_shows_nobody(browser, tmp_path):
    from selenium.webdriver.common.by import By

    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        srv.post(envelope(seat(1), name="Ana"))
        browser.get(srv.url + "/")
        alert = wait_for(lambda: browser.find_element(By.ID, "alert").text)
        assert "open the page URL that class.serve wrote" in alert and "Stopped asking" in alert
        assert browser.find_elements(By.CSS_SELECTOR, "#seats tr") == []
    finally:
        srv.stop()


class Answer500(http.server.BaseHTTPRequestHandler):
    """Stands in for a room that breaks (what a store with Infinity did before issue 25): every GET is 500."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_the_page_says_when_a_poll_fails(browser, tmp_path):
    from selenium.webdriver.common.by import By

    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        assert srv.post(envelope(seat(1), report=DOCTOR_FAIL)).status_code == 201
        browser.get(srv.page_url())
        wait_for(lambda: cell(browser, seat(1), "doctor") == "cell fail")
        alert = browser.find_element(By.ID, "alert")
        assert not alert.is_displayed()

        srv.kill()  # the room is gone: the page says so, and how old its grid is
        wait_for(lambda: alert.is_displayed(), timeout=3)
        assert alert.text.startswith("The room is not reachable") and "the grid below is from" in alert.text
        assert alert.value_of_css_property("background-color") == "rgba(179, 38, 30, 1)"  # the red bar

        broken = http.server.ThreadingHTTPServer(("127.0.0.1", srv.room_port), Answer500)
        threading.Thread(target=broken.serve_forever, daemon=True).start()
        try:
            wait_for(lambda: "answered 500" in alert.text, timeout=3)
            assert cell(browser, seat(1), "doctor") == "cell fail"  # the last view stays, marked stale
            assert "stale" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
        finally:
            broken.shutdown()
            broken.server_close()

        srv.start()  # back: the bar goes, the grid is live again
        wait_for(lambda: not alert.is_displayed(), timeout=5)
        assert srv.post(envelope(seat(1), report=DOCTOR_OK)).status_code == 201
        wait_for(lambda: cell(browser, seat(1), "doctor") == "cell pass", timeout=3)
    finally:
        srv.stop()


def test_names_are_isolated_and_duplicates_flagged(browser, tmp_path):
    from selenium.webdriver.common.by import By

    srv = ClassServe(tmp_path / "class", "--no-bundle").start()
    try:
        hebrew = "\u05e9\u05e8\u05d4 (2)"
        for n, name in ((1, "Ana"), (2, "ana"), (3, hebrew), (4, "\u202eevil\u202c")):
            assert srv.post(envelope(seat(n), name=name), source=f"127.0.9.{n}").status_code == 201
        browser.get(srv.page_url())
        wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#seats tr")) == 4)
        names = {row.get_attribute("data-seat"): row.find_element(By.CSS_SELECTOR, "th.name bdi")
                 for row in browser.find_elements(By.CSS_SELECTOR, "#seats tr")}
        assert names[seat(4)].text == "evil"  # the override was dropped by the room
        assert names[seat(3)].text == hebrew
        assert {n.value_of_css_property("unicode-bidi") for n in names.values()} == {"isolate"}
        flagged = {row.get_attribute("data-seat") for row in browser.find_elements(By.CSS_SELECTOR, "#seats tr")
                   if row.find_elements(By.CSS_SELECTOR, "th.name .dup")}
        assert flagged == {seat(1), seat(2)}
    finally:
        srv.stop()
