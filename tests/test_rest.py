"""The plain REST API beside the chat (rest.py), over real HTTP against the app started in this process:
`/api/search` returns the `faqbot ask --json` object, every bad input gets a 4xx with a JSON error, `/healthz`
reports the model and index, and Gradio's per-call bookkeeping stays bounded."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest

from faqbot.cli import main

EN_Q = "How do I uninstall MindSpore?"
ZH_Q = "pip安装MindSpore对Python版本是否有特别要求？"


@pytest.fixture(scope="module")
def rest_app(retriever, tmp_path_factory):
    """The app as `python app.py` serves it (web.launch), on a free loopback port."""
    from faqbot.config import Settings
    from faqbot.server import build_app, launch

    db = tmp_path_factory.mktemp("rest-feedback") / "feedback.sqlite3"
    demo = build_app(retriever, Settings(feedback_db=db))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, "127.0.0.1", port, quiet=True)
    yield demo, port
    demo.close()


def _request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read(), resp.getheader("Server-Timing")
    finally:
        conn.close()


def _get(port: int, **params) -> tuple[int, dict]:
    status, ctype, raw, _ = _request(port, "GET", "/api/search?" + urllib.parse.urlencode(params))
    assert ctype.startswith("application/json")
    return status, json.loads(raw)


def _post(port: int, payload, raw: bytes | None = None) -> tuple[int, dict]:
    body = raw if raw is not None else json.dumps(payload).encode("utf-8")
    status, ctype, data, _ = _request(port, "POST", "/api/search", body, {"Content-Type": "application/json"})
    assert ctype.startswith("application/json")
    return status, json.loads(data)


def _ask_json(capsys, *args) -> dict:
    assert main(["ask", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_get_and_post_return_exactly_the_ask_json_object(rest_app, capsys):
    _, port = rest_app
    expected = _ask_json(capsys, EN_Q)
    assert _get(port, q=EN_Q) == (200, expected)
    assert _post(port, {"q": EN_Q}) == (200, expected)
    assert expected["in_scope"] is True and expected["answers"]


def test_k_version_and_component_are_applied_as_in_the_cli(rest_app, capsys):
    _, port = rest_app
    expected = _ask_json(capsys, "--k", "3", "--version", "r1.1", "--component", "mindspore", ZH_Q)
    status, got = _get(port, q=ZH_Q, k=3, version="r1.1", component="mindspore")
    assert (status, got) == (200, expected)
    assert 1 <= len(got["answers"]) <= 3
    assert {a["version"] for a in got["answers"]} == {"r1.1"}
    assert {a["component"] for a in got["answers"]} == {"mindspore"}
    assert _post(port, {"q": ZH_Q, "k": 3, "version": "r1.1", "component": "mindspore"}) == (200, expected)


def test_stage_times_come_back_in_a_server_timing_header(rest_app):
    _, port = rest_app
    status, _, _, timing = _request(port, "GET", "/api/search?" + urllib.parse.urlencode({"q": "Server-Timing probe " + EN_Q}))
    assert status == 200
    names = {part.split(";")[0].strip() for part in timing.split(",")}
    assert names == {"queue", "instance", "model", "rank", "render"}


@pytest.mark.parametrize(
    "params, needle",
    [
        ({}, "missing q"),
        ({"q": ""}, "q is empty"),
        ({"q": "   "}, "q is empty"),
        ({"q": EN_Q, "k": "three"}, "k must be a whole number from 1 to 50"),
        ({"q": EN_Q, "k": "0"}, "k must be a whole number from 1 to 50"),
        ({"q": EN_Q, "k": "51"}, "k must be a whole number from 1 to 50"),
        ({"q": EN_Q, "k": "2.5"}, "k must be a whole number from 1 to 50"),
        ({"q": EN_Q, "version": "r9.9"}, "unknown version 'r9.9'"),
        ({"q": EN_Q, "component": "tensorflow"}, "unknown component 'tensorflow'"),
        ({"q": EN_Q, "question": EN_Q}, "unknown parameter 'question'"),
    ],
)
def test_bad_get_parameters_get_400_with_a_json_error(rest_app, params, needle):
    _, port = rest_app
    status, body = _get(port, **params)
    assert status == 400
    assert set(body) == {"error"} and needle in body["error"]


@pytest.mark.parametrize(
    "payload, needle",
    [
        ({}, "missing q"),
        ({"q": 42}, "q must be a string, not int"),
        ({"q": None}, "missing q"),
        ({"q": ["a", "b"]}, "q must be a string, not list"),
        ({"q": ""}, "q is empty"),
        ({"q": EN_Q, "k": "3"}, "k must be a whole number"),
        ({"q": EN_Q, "k": 3.5}, "k must be a whole number"),
        ({"q": EN_Q, "k": True}, "k must be a whole number"),
        ({"q": EN_Q, "k": 0}, "k must be a whole number from 1 to 50, not 0"),
        ({"q": EN_Q, "k": 500}, "k must be a whole number from 1 to 50, not 500"),
        ({"q": EN_Q, "version": 1}, "version must be a string"),
        ({"q": EN_Q, "component": ["mindspore"]}, "component must be a string"),
        ({"q": EN_Q, "version": "v2"}, "unknown version 'v2'"),
        ([EN_Q], "must be a JSON object"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_bad_post_bodies_get_400_with_a_json_error(rest_app, payload, needle):
    _, port = rest_app
    status, body = _post(port, payload)
    assert status == 400
    assert set(body) == {"error"} and needle in body["error"]


def test_malformed_json_and_lone_surrogates_get_400(rest_app):
    _, port = rest_app
    status, body = _post(port, None, raw=b'{"q": "unterminated')
    assert status == 400 and "not JSON" in body["error"]
    status, body = _post(port, None, raw=b'\xff\xfe{"q": 1}')
    assert status == 400 and "not JSON" in body["error"]
    status, body = _post(port, None, raw=b'{"q": "install \\ud800 MindSpore"}')  # valid JSON, not valid Unicode
    assert status == 400 and "lone surrogate" in body["error"]
    # a percent-encoded surrogate in a query string is decoded with replacement characters, so it is searchable
    status, _, raw, _ = _request(port, "GET", "/api/search?q=install%20%ED%A0%80%20MindSpore")
    assert status == 200 and json.loads(raw)["answers"]


def test_oversized_body_gets_413(rest_app):
    _, port = rest_app
    status, body = _post(port, {"q": "x" * 70_000})
    assert status == 413 and "64 KB" in body["error"]


def test_a_long_paste_is_answered_and_says_it_was_cut(rest_app):
    _, port = rest_app
    status, body = _post(port, {"q": "How do I install MindSpore with pip? " * 200})
    assert status == 200 and "2,000" in body["message"]


def test_wrong_method_is_405(rest_app):
    _, port = rest_app
    status, _, _, _ = _request(port, "DELETE", "/api/search?q=x")
    assert status == 405


def test_healthz_reports_model_and_index(rest_app, retriever):
    _, port = rest_app
    status, ctype, raw, _ = _request(port, "GET", "/healthz")
    body = json.loads(raw)
    assert status == 200 and ctype.startswith("application/json")
    assert body["status"] == "ok"
    assert body["model"] == retriever.embedder.name
    assert body["model_instances"] == retriever.embedder.instances >= 1
    assert body["items"] == len(retriever.items) and body["vectors"] == len(retriever.index.rows)
    assert body["search_workers"] == retriever.embedder.instances


def test_concurrent_clients_get_the_same_answers_as_one_at_a_time(rest_app):
    _, port = rest_app
    questions = [EN_Q, ZH_Q, "MindSpore 支持哪些硬件平台？", "How can I save and load a model checkpoint?"] * 3
    alone = {q: _get(port, q=q)[1] for q in set(questions)}
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: _get(port, q=q), questions))
    assert all(status == 200 for status, _ in together)
    assert [body for _, body in together] == [alone[q] for q in questions]


def test_gradio_keeps_no_bookkeeping_per_finished_api_call(rest_app):
    """Each plain-HTTP /gradio_api/call is a new Gradio session. The app's lifespan task (rest.py) drops the
    entry of each finished one, and the analytics history is capped (web.GRADIO_GROWTH_SETTINGS), so neither
    grows with the calls served."""
    import time

    from faqbot.server import PRUNE_SECONDS

    demo, port = rest_app
    queue = demo._queue
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/gradio_api/info")
    n_params = len(json.loads(conn.getresponse().read())["named_endpoints"]["/search"]["parameters"])
    sessions, seen = set(), []
    for i in range(12):
        data = [f"{EN_Q} #{i}", 1, "latest", ""] + [None] * (n_params - 4)  # optional later parameters left out
        conn.request("POST", "/gradio_api/call/search", body=json.dumps({"data": data}),
                     headers={"Content-Type": "application/json"})
        event_id = json.loads(conn.getresponse().read())["event_id"]
        sessions.add(event_id)
        conn.request("GET", f"/gradio_api/call/search/{event_id}")
        assert b"event: complete" in conn.getresponse().read()
        seen.append(event_id in queue.pending_event_ids_session)  # Gradio left the finished session's entry
    conn.close()
    assert any(seen)
    deadline = time.monotonic() + 4 * PRUNE_SECONDS
    while time.monotonic() < deadline and sessions & set(queue.pending_event_ids_session):
        time.sleep(0.2)
    assert not sessions & set(queue.pending_event_ids_session)
    assert queue.ANALYTICS_MAX_EVENTS == 500 and len(queue.event_analytics) <= 500
    assert demo.state_session_capacity == 2000


def test_pruning_keeps_sessions_with_events_still_pending():
    from types import SimpleNamespace

    from faqbot.server import prune_finished_sessions

    queue = SimpleNamespace(pending_event_ids_session={"done": set(), "busy": {"e1"}, "also-done": set()})
    assert prune_finished_sessions(queue) == 2
    assert queue.pending_event_ids_session == {"busy": {"e1"}}
