"""Gradio's per-request costs cut in server.py (issue 21), without changing what Gradio does: its scheduler waits
for the queue to change instead of polling every millisecond (`QueueWake`), and a new Gradio session (every
plain-HTTP API call is one) is copied from a template instead of rendering every block's config again
(`SessionTemplate`). The served app must answer exactly as the chat does, a copied session must hold what
Gradio's own would, and no session may share anything another one changes. Fast tier (fixture index)."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from faqbot.server import QueueWake, SessionTemplate, _QueueAsyncio

QUESTIONS = ["How do I install it?", "安装失败怎么办？", "How do I save a checkpoint?", "What hardware is supported?",
             "pip 安装报错", "How do I set the log level?", "a question about cooking pasta", "怎么卸载？"]


# --------------------------------------------------------------------------- the scheduler's wait


def test_the_schedulers_wait_ends_when_the_queue_changes():
    async def main():
        wake = QueueWake(3600.0)  # its own timeout never comes during this test
        sleeper = asyncio.create_task(_QueueAsyncio.sleep(wake, "woken"))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not sleeper.done()  # waiting for a change
        wake.wake()
        return await asyncio.wait_for(sleeper, 30)  # a lost wake-up fails here instead of hanging

    assert asyncio.run(main()) == "woken"


def test_a_change_before_the_wait_is_not_lost_and_is_used_once():
    async def main():
        wake = QueueWake(3600.0)
        wake.wake()  # the queue changed while the scheduler was busy
        await asyncio.wait_for(wake.wait(), 30)  # so its next wait returns at once
        again = asyncio.create_task(wake.wait())
        for _ in range(5):
            await asyncio.sleep(0)
        waiting = not again.done()  # nothing changed since: it waits
        again.cancel()
        return waiting

    assert asyncio.run(main())


def test_a_wake_from_another_thread_reaches_the_waiting_loop():
    async def main():
        wake = QueueWake(3600.0)
        waiter = asyncio.create_task(wake.wait())
        for _ in range(5):
            await asyncio.sleep(0)
        other = threading.Thread(target=wake.wake)
        other.start()
        await asyncio.wait_for(waiter, 30)
        other.join()
        return waiter.done()

    assert asyncio.run(main())


def test_every_other_sleep_and_name_of_gradios_queue_module_is_asyncios_own():
    proxy = _QueueAsyncio()
    assert proxy.Event is asyncio.Event and proxy.create_task is asyncio.create_task
    assert proxy.CancelledError is asyncio.CancelledError
    assert asyncio.run(proxy.sleep(0, "plain")) == "plain"


# --------------------------------------------------------------------------- sessions from a template


def _blocks() -> gr.Blocks:
    with gr.Blocks() as blocks:
        gr.Markdown("first")
        box = gr.Textbox("typed", label="question")
        out = gr.Textbox(label="answer")
        state = gr.State([])
        box.submit(lambda q, s: (q, s), [box, state], [out, state])
    return blocks


def test_a_copied_session_holds_what_gradios_own_would():
    blocks = _blocks()
    template = SessionTemplate()
    for _ in range(2):  # the first is the template's first use, the second a copy
        copied, own = template.new(blocks), SessionState(blocks)
        assert vars(copied).keys() == vars(own).keys()
        assert copied.config_values == own.config_values
        assert copied.blocks_config.blocks == own.blocks_config.blocks
        assert copied.state_data == own.state_data == {} and copied.is_closed is False


def test_sessions_share_nothing_that_a_call_changes():
    blocks = _blocks()
    template = SessionTemplate()
    first = template.new(blocks)
    box = next(k for k, b in blocks.blocks.items() if isinstance(b, gr.Textbox))
    state = next(k for k, b in blocks.blocks.items() if isinstance(b, gr.State))
    first._update_value_in_config(box, "a user's question")  # what Gradio does with each call's inputs
    first[state].append("a turn")  # a session's gr.State value
    first.blocks_config.blocks[box] = gr.Textbox("replaced", render=False)  # an output's update
    second = template.new(blocks)
    assert second.config_values == SessionState(blocks).config_values
    assert second.config_values[box]["props"]["value"] == "typed"
    assert second[state] == [] and second.blocks_config.blocks[box] is blocks.blocks[box]


def test_a_block_changed_in_the_app_gets_a_new_template():
    blocks = _blocks()
    template = SessionTemplate()
    template.new(blocks)
    md = next(k for k, b in blocks.blocks.items() if isinstance(b, gr.Markdown))
    blocks.default_config.blocks[md] = gr.Markdown("second", render=False)
    copied = template.new(blocks)
    assert copied.config_values[md]["props"]["value"] == "second"
    assert copied.config_values == SessionState(blocks).config_values


# --------------------------------------------------------------------------- the served app


@pytest.fixture(scope="module")
def served(fake_retriever, tmp_path_factory):
    from urllib.parse import urlsplit

    from conftest import launch_app
    from faqbot.config import Settings

    url, demo = launch_app(fake_retriever, Settings(feedback_db=tmp_path_factory.mktemp("costs") / "feedback.sqlite3"))
    yield demo, urlsplit(url).port
    demo.close()


def _ask(port: int, question: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/gradio_api/call/ask", body=json.dumps({"data": [question]}),
                     headers={"Content-Type": "application/json"})
        event_id = json.loads(conn.getresponse().read())["event_id"]
        conn.request("GET", f"/gradio_api/call/ask/{event_id}")
        stream = conn.getresponse().read().decode("utf-8")
    finally:
        conn.close()
    assert re.findall(r"^event: (\w+)", stream, re.M)[-1] == "complete", stream[-500:]
    return json.loads(re.findall(r"^data: (.*)$", stream, re.M)[-1])[0]


def test_the_served_queue_is_woken_by_its_changes_and_answers_as_the_chat_does(served):
    """More calls at once than the retrieval concurrency limit: the waiting ones start only when a running one
    finishes and wakes the scheduler. Its own timeout is an hour here, so a lost wake-up would leave a call
    waiting until the client gives up (60 s) and fail the test."""
    from faqbot.web import RETRIEVAL_CONCURRENCY

    demo, port = served
    assert isinstance(demo._queue.sleep_when_free, QueueWake)
    assert type(demo.state_holder).__name__ == "_TemplatedStateHolder"
    long_wait = demo._queue.sleep_when_free = QueueWake(3600.0)
    _ask(port, QUESTIONS[0])  # the scheduler leaves its start-up wait
    questions = QUESTIONS * 2
    assert len(questions) > 3 * RETRIEVAL_CONCURRENCY
    with ThreadPoolExecutor(len(questions)) as pool:
        calls = [pool.submit(_ask, port, q) for q in questions]
        _, never_started = wait(calls, timeout=120)
        demo._queue.sleep_when_free = QueueWake(0.05)  # let any call left waiting finish before the pool closes
        long_wait.wake()
    assert not never_started, f"{len(never_started)} calls waited for a wake-up that never came"
    chat = demo.faqbot_chat
    assert [call.result() for call in calls] == [chat.ask(q) for q in questions]
