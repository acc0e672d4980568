"""Bad input to the command line and the app gets a one-line message and an exit code, never a traceback
(issue 9, findings 4, 6 and 8). Each case runs a real process and reads its stderr and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.config import Settings, SettingsError, settings_from_env

REPO = Path(__file__).resolve().parents[1]


def run(args: list, env: dict | None = None, stdin: bytes = b"", timeout: int = 300) -> subprocess.CompletedProcess:
    """`faqbot ARGS` (or `python ARGS` when args[0] ends in .py) in a fresh process; bytes args stay bytes."""
    full_env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("FAQBOT_DEBUG", None)
    head = [sys.executable] if str(args[0]).endswith(".py") else [sys.executable, "-m", "faqbot.cli"]
    return subprocess.run(head + list(args), input=stdin, capture_output=True, timeout=timeout, cwd=REPO, env=full_env)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, *phrases: str) -> str:
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):  # argparse: its usage block (indented continuation), then one error
        lines = [line for line in lines if not line.startswith(("usage:", " "))]
    message = lines
    assert len(message) == 1, err
    for phrase in phrases:
        assert phrase in message[0], err
    return message[0]


# One real process per kind of failure (stderr text and exit code as a user sees them) ...


def test_bad_min_confidence_is_refused_at_start_with_the_range():
    proc = run(["ask", "--json", "install"], env={"FAQBOT_MIN_CONFIDENCE": "nan"})
    assert_one_line_error(proc, 2, "FAQBOT_MIN_CONFIDENCE", "from 0 to 1")
    assert proc.stdout == b""


def test_empty_model_is_refused_instead_of_building_an_index():
    assert_one_line_error(run(["ask", "--model", "", "install"]), 2, "model id is empty")


def test_feedback_limit_out_of_range_is_a_usage_message(tmp_path):
    proc = run(["feedback", "--limit", "1e20"], env={"FAQBOT_FEEDBACK_DB": str(tmp_path / "f.sqlite3")})
    assert_one_line_error(proc, 2, "--limit", "from 1 to 10000")


def test_ask_k_out_of_range_is_a_usage_message():
    assert_one_line_error(run(["ask", "--k", "1e20", "install"]), 2, "--k", "from 1 to 50")


def test_eval_on_a_file_that_is_not_a_dev_set_says_so():
    assert_one_line_error(run(["eval", "--devset", "/etc/passwd"]), 2, "/etc/passwd is not a dev set")


def test_bad_bytes_in_a_flag_value_are_named_not_a_traceback():
    proc = run(["ask", "--version", b"r1.\xff", "install"])
    assert_one_line_error(proc, 2, "unknown --version", "\ufffd")


def test_app_refuses_a_port_out_of_range_before_loading_anything():
    assert_one_line_error(run(["app.py", "--port", "99999"], timeout=120), 2, "--port", "1 to 65535")


@pytest.mark.slow  # imports Gradio
def test_app_refuses_a_bad_setting_with_a_message():
    proc = run(["app.py", "--port", "7999"], env={"FAQBOT_MIN_CONFIDENCE": "nan"}, timeout=120)
    assert_one_line_error(proc, 2, "FAQBOT_MIN_CONFIDENCE")


# ... and their variants in process.


def _main_error(capsys, argv: list[str], code: int) -> str:
    from faqbot.cli import main

    try:
        got = main(argv)
    except SystemExit as exc:  # argparse usage errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["inf", "-inf", "1e309", "abc", "-1", "1.5"])
def test_min_confidence_variants_are_refused(capsys, monkeypatch, value):
    monkeypatch.setenv("FAQBOT_MIN_CONFIDENCE", value)
    assert "FAQBOT_MIN_CONFIDENCE" in _main_error(capsys, ["ask", "--json", "install"], 2)


@pytest.mark.parametrize("limit", ["100000000000000000000", "0", "-3", "ten", "2.5"])
def test_feedback_limit_variants_are_usage_messages(capsys, limit):
    assert "from 1 to 10000" in _main_error(capsys, ["feedback", "--limit", limit], 2)


@pytest.mark.parametrize("k", ["0", "51", "abc", "nan"])
def test_ask_k_variants_are_usage_messages(capsys, k):
    assert "from 1 to 50" in _main_error(capsys, ["ask", "--k", k, "install"], 2)


@pytest.mark.parametrize("devset", ["README.md", "tests/data", "pyproject.toml"])
def test_eval_devset_variants_say_it_is_not_a_dev_set(capsys, monkeypatch, devset):
    monkeypatch.chdir(REPO)
    assert "dev set" in _main_error(capsys, ["eval", "--devset", devset], 2)


def test_eval_on_json_rows_without_questions_says_so(capsys, tmp_path):
    bad = tmp_path / "dev.jsonl"
    bad.write_text('{"question": "no q field"}\n[1, 2]\n', encoding="utf-8")
    assert "is not a dev set" in _main_error(capsys, ["eval", "--devset", str(bad)], 2)


# --- settings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("FAQBOT_MIN_CONFIDENCE", "nan"), ("FAQBOT_MIN_CONFIDENCE", "1e309"),
                                             ("FAQBOT_MAX_QUESTION_CHARS", "inf"), ("FAQBOT_MAX_QUESTION_CHARS", "-1"),
                                             ("FAQBOT_MAX_JSON_DEPTH", "x"), ("FAQBOT_MAX_BODY_BYTES", "1.5")])
def test_settings_from_env_refuse_non_finite_and_out_of_range_numbers(name, value):
    with pytest.raises(SettingsError, match=name):
        settings_from_env({name: value})


@pytest.mark.parametrize("change", [{"model": ""}, {"model": "  "}, {"k": 0}, {"k": 51}, {"k": 2.5},
                                    {"min_confidence": float("nan")}, {"max_question_chars": float("inf")},
                                    {"max_history_turns": 0}])
def test_settings_refuse_an_empty_model_and_numbers_out_of_range_however_made(change):
    with pytest.raises(SettingsError):
        Settings().with_(**change)


def test_good_settings_are_read_as_given():
    s = settings_from_env({"FAQBOT_MIN_CONFIDENCE": " 0.65 ", "FAQBOT_MAX_QUESTION_CHARS": "5000",
                           "FAQBOT_MAX_HISTORY_TURNS": "7"})
    assert (s.min_confidence, s.max_question_chars, s.max_history_turns) == (0.65, 5000, 7)


# --- real model (slow): bad bytes and odd characters get answers ---------------------------------------------


@pytest.mark.slow
def test_jsonl_answers_every_line_in_order_despite_invalid_utf8():
    """`printf 'ok\\n\\xff\\nok2\\n' | faqbot ask --jsonl`, plus the characters splitlines() splits on."""
    lines = [b"ok", b"\xff", b"ok2", "how to install \u2028 MindSpore \u2029 \x85 pip".encode(), b"\xed\xa0\x80 surrogate", b"a\rb"]
    proc = run(["ask", "--jsonl", "--k", "1"], stdin=b"\n".join(lines) + b"\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode("utf-8")  # strict: the output is valid UTF-8
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["query"] for o in objs] == [b.decode("utf-8", "replace") for b in lines]
    assert all({"query", "lang", "in_scope", "answers"} <= set(o) for o in objs)
    assert "Traceback" not in proc.stderr.decode("utf-8", "replace")


@pytest.mark.slow
def test_bad_bytes_in_the_question_argument_get_an_answer():
    proc = run(["ask", "--json", "--k", "1", b"how to install \xff\xfe MindSpore"])
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout.decode("utf-8"))
    assert obj["query"] == "how to install \ufffd\ufffd MindSpore" and obj["answers"]
