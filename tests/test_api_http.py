"""Wrong input types over HTTP get Gradio's error event with our message, never `{"error": null}` and a
traceback (issue 9, finding 6). The app runs on the fixture index (HashEmbedder), in this process."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

pytestmark = pytest.mark.slow  # starts a Gradio server (seconds)


@pytest.fixture(scope="module")
def fake_app(fake_retriever, tmp_path_factory):
    from faqbot.config import Settings
    from faqbot.server import build_app, launch_options

    demo = build_app(fake_retriever, Settings(feedback_db=tmp_path_factory.mktemp("fb") / "feedback.sqlite3"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_options())
    yield demo.local_url.rstrip("/")
    demo.close()


def call(base: str, api: str, data: list) -> tuple[str, object]:
    """POST then read the event stream: ("complete", value) or ("error", message)."""
    data = data + [None]  # the optional conversation history
    req = urllib.request.Request(f"{base}/gradio_api/call/{api}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event_id = json.load(urllib.request.urlopen(req, timeout=60))["event_id"]
    stream = urllib.request.urlopen(f"{base}/gradio_api/call/{api}/{event_id}", timeout=120).read().decode()
    event = [line[7:] for line in stream.splitlines() if line.startswith("event: ")][-1]
    payload = json.loads([line[6:] for line in stream.splitlines() if line.startswith("data: ")][-1])
    return event, payload[0] if event == "complete" else payload


@pytest.mark.parametrize(("api", "data", "phrase"), [
    ("search", [["a", "list"], 3, "latest", ""], "question must be a string"),
    ("search", [42, 3, "latest", ""], "question must be a string"),
    ("ask", [None, "latest", ""], "question must be a string"),
    ("search", ["install", "abc", "latest", ""], "k must be a whole number"),
    ("search", ["install", 1e300, "latest", ""], "k must be a whole number"),
    ("search", ["install", 10**30, "latest", ""], "k must be a whole number"),
    ("search", ["install", 3, 7, ""], "version must be a string"),
])
def test_wrong_types_get_an_error_event_with_our_message(fake_app, api, data, phrase):
    event, payload = call(fake_app, api, data)
    assert event == "error" and payload is not None and phrase in json.dumps(payload)


@pytest.mark.parametrize("question", ["install \ud800 pip", "\udcff\udcfe", "a\u2028b\x85c"])
def test_lone_surrogates_and_line_separators_get_an_answer(fake_app, question):
    body = json.dumps({"data": [question, 2, "latest", "", None]})  # json.dumps writes lone surrogates as \\udxxx escapes
    req = urllib.request.Request(f"{fake_app}/gradio_api/call/search", data=body.encode(), headers={"Content-Type": "application/json"})
    event_id = json.load(urllib.request.urlopen(req, timeout=60))["event_id"]
    stream = urllib.request.urlopen(f"{fake_app}/gradio_api/call/search/{event_id}", timeout=120).read().decode()
    assert "event: complete" in stream, stream
    result = json.loads([line[6:] for line in stream.splitlines() if line.startswith("data: ")][-1])[0]
    assert {"query", "lang", "in_scope", "answers"} <= set(result)
    assert result["query"] == question.replace("\ud800", "\ufffd").replace("\udcff", "\ufffd").replace("\udcfe", "\ufffd")
