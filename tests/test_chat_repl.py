"""`faqbot chat`, driven as a person would: a real pseudo-terminal (pexpect), readline, Ctrl-D."""

from __future__ import annotations

import os
import sys

import pexpect  # the `test` extra
import pytest

pytestmark = pytest.mark.slow  # a fresh process loads the real model and index

FIRST, FOLLOW, GOLD = "MindSpore Lite 怎么设置日志级别？", "一共有几种？", "master/lite/lite/b2817349"  # issue 11's example
TIMEOUT = 180  # a generous ceiling for a busy machine, not a speed assertion
PROMPT = "> "


def _spawn(*args: str):
    child = pexpect.spawn(sys.executable, ["-m", "faqbot.cli", "chat", *args], encoding="utf-8",
                          timeout=TIMEOUT, dimensions=(50, 200), env={**os.environ, "TERM": "xterm"})
    child.expect("Ctrl-D")  # the greeting says how to quit
    child.expect_exact(PROMPT)
    return child


def _ask(child, question: str) -> str:
    """Type a question, return what was printed before the next prompt."""
    child.sendline(question)
    child.expect_exact("\r\n" + PROMPT)
    return child.before


def _title(out: str) -> str | None:
    """The title of the answer printed (the FAQ question above its ==== line); None for "not covered"."""
    lines = out.replace("\r", "").splitlines()
    return next((lines[i - 1].strip() for i in range(1, len(lines)) if lines[i].startswith("=====")), None)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_chat_answers_a_follow_up_in_context_resets_and_quits_on_ctrl_d(retriever):
    gold = _one_line(retriever.item(GOLD).entry("zh").question)
    assert retriever.search(FOLLOW).match == "none"  # asked alone, the follow-up is "not covered"
    child = _spawn()
    try:
        out = _ask(child, FIRST)
        assert _title(out) == gold and "https://www.mindspore.cn/" in out  # rendered like `faqbot ask`
        assert _title(_ask(child, FOLLOW)) == gold  # answered from the conversation

        assert "new conversation" in _ask(child, "/reset")
        out = _ask(child, FOLLOW)
        assert _title(out) is None and "没有涵盖" in out  # a new conversation: asked alone again

        child.sendeof()  # Ctrl-D
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_chat_recalls_the_previous_question_with_the_up_arrow(retriever):
    child = _spawn()
    try:
        question = "How do I uninstall MindSpore?"
        first = _ask(child, question)
        child.send("\x1b[A")  # up arrow: readline brings the last question back
        child.expect_exact(question)
        child.send("\r")
        child.expect_exact("\r\n" + PROMPT)
        assert child.before.strip().splitlines()[-1] == first.strip().splitlines()[-1]
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_chat_refuses_an_unknown_component_with_one_line():
    child = pexpect.spawn(sys.executable, ["-m", "faqbot.cli", "chat", "--component", "nope"],
                          encoding="utf-8", timeout=TIMEOUT)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    assert "unknown --component 'nope'" in child.before and "Traceback" not in child.before
