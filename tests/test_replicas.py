"""Two real replicas behind a real nginx, sharing one real PostgreSQL, under load from 16 clients; one replica is
SIGKILLed mid-load. The scenario (and its longer benchmark) is benchmarks/replicas.py; here it runs for about
20 s and what must hold is asserted: votes from both replicas land in the one database, no acknowledged vote is
lost, the only errors are requests in flight at the kill, and the other replica keeps answering. The figures are
printed (run with -s to see them), never asserted."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import missing

from test_feedback_backends import pg_cluster  # noqa: F401  (the throw-away PostgreSQL cluster fixture)

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("bench_replicas", Path(__file__).resolve().parents[1] / "benchmarks" / "replicas.py")
replicas = importlib.util.module_from_spec(_spec)
sys.modules["bench_replicas"] = replicas
_spec.loader.exec_module(replicas)

CLIENTS = 16
THROUGHPUT_SECONDS = 6.0
KILL_SECONDS = 20.0
KILL_AFTER = 8.0


@pytest.fixture(scope="module")
def stack(pg_cluster):  # noqa: F811
    """PostgreSQL (a fresh database), replicas a and b, nginx over a alone and over both; all stopped after."""
    if replicas.nginx_binary() is None:
        missing("nginx not found: apt-get install -y nginx")
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="faqbot-replicas-"))
    folder.chmod(0o755)
    try:
        with replicas.cluster(pg_cluster.new_database(), folder) as c:
            replicas.warm_up(c)
            yield c
        assert c.a.proc.poll() is not None and c.b.proc.poll() is not None and c.pair.proc.poll() is not None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def throughput(stack):
    return replicas.throughput_phase(stack, seconds=THROUGHPUT_SECONDS, clients=CLIENTS)


@pytest.fixture(scope="module")
def killed(stack, throughput):
    """The kill phase, after the throughput phase (it leaves one replica)."""
    report = replicas.kill_scenario(stack, seconds=KILL_SECONDS, kill_after=KILL_AFTER, clients=CLIENTS)
    shown = {k: v for k, v in report.items() if k != "_result"}
    replicas.print_report({"clients": CLIENTS, "seconds": THROUGHPUT_SECONDS, "throughput": throughput, "kill": shown})
    print(json.dumps({"throughput": throughput, "kill": shown}))
    return report


def test_searches_through_nginx_are_spread_over_both_replicas_and_none_fail(throughput):
    assert throughput["1_replica"]["errors"] == 0 and throughput["2_replicas"]["errors"] == 0
    assert throughput["1_replica"]["replicas_answering"] == 1
    assert throughput["2_replicas"]["replicas_answering"] == 2
    assert throughput["2_replicas"]["ok"] > 0


def test_a_browser_stays_on_one_replica_by_its_route_cookie(stack):
    import http.client

    def visit(cookie: str | None, tag: str) -> tuple[str, int]:
        conn = http.client.HTTPConnection("127.0.0.1", stack.pair.port, timeout=30)
        conn.request("GET", f"/config?probe={tag}", headers={"Cookie": f"faqbot_route={cookie}"} if cookie else {})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return (resp.getheader("Set-Cookie") or "").split(";")[0].removeprefix("faqbot_route="), resp.status

    cookies = [visit(None, f"new{i}")[0] for i in range(16)]
    assert all(cookies) and len(set(cookies)) == 16  # each new browser gets its own route key
    for i, cookie in enumerate(cookies):
        for j in range(3):
            assert visit(cookie, f"c{i}r{j}") == (cookie, 200)
    # the nginx access log says which replica answered each request (a line is written just after its response)
    time.sleep(1)
    upstream = {}
    for line in stack.pair.access_log():
        if "probe=" in line:
            upstream[line.split("probe=")[1].split()[0]] = line.split("upstream=")[1].split()[0]
    per_cookie = [{upstream[f"c{i}r{j}"] for j in range(3)} for i in range(16)]
    assert all(len(replicas_seen) == 1 for replicas_seen in per_cookie), per_cookie
    assert {upstream[f"c{i}r0"] for i in range(16)} == {stack.a.address, stack.b.address}  # both replicas used


@pytest.mark.browser
def test_the_browser_chat_answers_through_nginx_and_each_browser_stays_on_one_replica(stack):
    """Gradio's page, queue and event stream through the sticky pool: each browser gets its answers, and every
    request of one browser (by its route cookie in the access log) went to one replica."""
    if not Path("/usr/bin/chromium").exists():
        missing("Debian's chromium not found: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    bot = '[data-testid="bot"]'
    routes = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            for question in ("How do I install MindSpore with pip?", "MindSpore 支持 Windows 吗？", "昇思支持哪些硬件？"):
                page = browser.new_context().new_page()
                page.goto(f"http://127.0.0.1:{stack.pair.port}/")
                box = page.locator("#question textarea")
                box.wait_for()
                box.fill(question)
                box.press("Enter")
                page.wait_for_function(f"document.querySelectorAll('{bot}').length >= 1", timeout=90_000)
                assert "MindSpore" in page.locator(bot).last.inner_text()
                routes += [c["value"] for c in page.context.cookies() if c["name"] == "faqbot_route"]
                page.context.close()
        finally:
            browser.close()
    time.sleep(1)
    assert len(set(routes)) == 3
    for route in routes:
        upstreams = {line.split("upstream=")[1].split()[0] for line in stack.pair.access_log()
                     if f"route={route}" in line and "/gradio_api/" in line}
        assert len(upstreams) == 1, (route, upstreams)


def test_votes_from_both_replicas_land_in_the_one_database(killed):
    by_replica = killed["votes_acknowledged_by_replica"]
    assert by_replica["a"] > 0 and by_replica["b"] > 0
    assert killed["votes_landed_total"] >= killed["votes_acknowledged"]


def test_killing_a_replica_loses_no_acknowledged_vote(killed):
    assert killed["votes_acknowledged"] > 0
    assert killed["votes_acknowledged_lost"] == 0


def test_the_only_errors_are_requests_in_flight_at_the_kill(killed):
    result = killed["_result"]
    errors = result.errors()
    assert all(result.in_flight_at_kill(call) for call in errors), [
        (round(call.start - result.kill_at, 3), round(call.end - result.kill_at, 3), call.kind, call.status, call.error)
        for call in errors if not result.in_flight_at_kill(call)][:10] + killed["nginx_error_log"]
    assert len(errors) <= CLIENTS  # at most one in flight per client
    assert killed["errors"] == len(errors)  # counted in the report


def test_the_other_replica_keeps_answering_after_the_kill(stack, killed):
    result = killed["_result"]
    survivor = f"-{stack.a.proc.pid}"
    after = [call for call in result.ok() if call.start > result.kill_done]
    assert len(after) > CLIENTS  # every client went on being answered
    assert all((call.replica or "").endswith(survivor) for call in after)
    assert {call.kind for call in after} == {"search", "vote"}
    assert stack.b.proc.poll() is not None and stack.a.proc.poll() is None
