"""Idle and slow connections are closed after a timeout (issue 23): a client that connects and sends nothing, or
sends half a request head (slowloris) or half a body, is disconnected within the configured timeouts
(FAQBOT_READ_TIMEOUT, FAQBOT_IDLE_TIMEOUT), while ordinary requests on the same server are answered. The app is
served by `server.launch` on the fixture index (HashEmbedder)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from conftest import launch_app
from faqbot.config import Settings, SettingsError, settings_from_env

pytestmark = pytest.mark.slow  # starts a Gradio server (seconds)

READ, IDLE = 1.0, 1.0
GRACE = 15.0  # how long the client waits for the server to hang up: a hang guard, not a timing assertion


@pytest.fixture(scope="module")
def app(fake_retriever, tmp_path_factory):
    settings = Settings(feedback_db=tmp_path_factory.mktemp("fb") / "feedback.sqlite3", read_timeout_seconds=READ,
                        idle_timeout_seconds=IDLE)
    base, demo = launch_app(fake_retriever, settings)
    yield base
    demo.close()


def _connect(base: str) -> socket.socket:
    host, port = base.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=GRACE)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; socket.timeout if it never does."""
    got = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk


def test_a_connection_that_sends_nothing_is_closed(app):
    with _connect(app) as sock:
        assert _read_until_closed(sock) == b""


def test_half_a_request_head_is_closed_and_the_server_answers_others_meanwhile(app):
    with _connect(app) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert urllib.request.urlopen(f"{app}/healthz", timeout=GRACE).status == 200
        assert _read_until_closed(sock) == b""


def test_a_slowloris_head_trickling_a_header_line_now_and_then_is_closed(app):
    with _connect(app) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        with pytest.raises(OSError):  # BrokenPipe / ConnectionReset once the server hung up
            for i in range(int(GRACE / (READ / 4))):
                sock.sendall(f"X-{i}: a\r\n".encode())
                sock.settimeout(READ / 4)
                try:
                    if sock.recv(1) == b"":
                        raise ConnectionResetError("closed by the server")
                except socket.timeout:
                    pass


@pytest.mark.parametrize("path", ["/api/search", "/gradio_api/call/search"])
def test_half_a_body_gets_408_with_a_json_message_and_is_closed(app, path):
    with _connect(app) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"q\": ".encode())
        head, _, body = _read_until_closed(sock).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert "took over 1 s to arrive" in json.loads(body)["error"]


def test_an_idle_keep_alive_connection_is_closed_after_its_answer(app):
    with _connect(app) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = _read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 200") and b'"status"' in answer


def test_a_slow_search_is_not_cut_by_the_head_deadline(app):
    """The deadline is for the head only: a request being answered is never closed by it."""
    body = json.dumps({"q": "安装 MindSpore " * 50, "history": ["pip install"] * 40}).encode()
    req = urllib.request.Request(f"{app}/api/search", data=body, headers={"Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(req, timeout=GRACE))["answers"]


@pytest.mark.parametrize(("name", "value"), [("FAQBOT_READ_TIMEOUT", "0"), ("FAQBOT_IDLE_TIMEOUT", "abc"),
                                             ("FAQBOT_READ_TIMEOUT", "inf")])
def test_timeout_settings_are_checked(name, value):
    with pytest.raises(SettingsError, match=name):
        settings_from_env({name: value})
    assert settings_from_env({name: "2.5"}).__getattribute__(
        "read_timeout_seconds" if name == "FAQBOT_READ_TIMEOUT" else "idle_timeout_seconds") == 2.5
