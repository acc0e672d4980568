"""`faqbot ask` / `index --check` / `eval`: the CLI contract other tools rely on."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faqbot.cli import main

REPO = Path(__file__).resolve().parents[1]
ANSWER_KEYS = {"id", "question", "questions", "answer", "url", "source_url", "version", "component", "score"}


@pytest.mark.slow  # the real model and shipped index
def test_ask_json_is_one_object_with_the_contract_fields(capsys):
    assert main(["ask", "--json", "--k", "3", "PyNative和Graph模式的区别"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert {"query", "lang", "in_scope", "answers"} <= set(obj)
    assert obj["lang"] == "zh" and obj["in_scope"] is True and len(obj["answers"]) == 3
    first = obj["answers"][0]
    assert ANSWER_KEYS <= set(first) and set(first["questions"]) == {"zh", "en"}
    assert first["source_url"].startswith("https://gitee.com/mindspore/docs/blob/")
    scores = [a["score"] for a in obj["answers"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow  # the real model and shipped index
def test_ask_off_topic_still_lists_suggestions(capsys):
    assert main(["ask", "--json", "how do I bake sourdough bread?"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["in_scope"] is False and len(obj["answers"]) == 5


@pytest.mark.slow  # the real model and shipped index
def test_ask_readable_answer_has_links(capsys):
    assert main(["ask", "How do I uninstall MindSpore?"]) == 0
    out = capsys.readouterr().out
    assert "https://www.mindspore.cn/" in out and "https://gitee.com/" in out


@pytest.mark.slow  # the real model and shipped index
def test_ask_jsonl_answers_each_line_in_order():
    lines = ["如何卸载MindSpore", "", "ERR_UNSAFE_PORT", "what is the weather in Paris"]
    proc = subprocess.run([sys.executable, "-m", "faqbot.cli", "ask", "--jsonl", "--k", "2"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["query"] for o in objs] == lines
    assert objs[0]["in_scope"] and not objs[1]["in_scope"] and objs[1]["answers"] == []
    assert "ERR_UNSAFE_PORT" in objs[2]["answers"][0]["question"]
    assert not objs[3]["in_scope"]


def test_ask_without_question_says_how(capsys):
    assert main(["ask", "  "]) == 2
    assert "please give a question" in capsys.readouterr().err


def test_unknown_model_is_a_clear_message_not_a_traceback(capsys):
    assert main(["ask", "--model", "no-such-model", "install"]) == 2
    err = capsys.readouterr().err
    assert "no-such-model" in err and "Traceback" not in err


@pytest.mark.slow  # the real model and shipped index
def test_missing_index_refused_with_what_to_run(tmp_path, capsys):
    assert main(["ask", "--index", str(tmp_path / "none"), "install"]) == 2
    assert "faqbot index" in capsys.readouterr().err


@pytest.mark.slow  # the real model and shipped index
def test_corrupt_index_refused_with_what_to_run(tmp_path, capsys):
    broken = tmp_path / "index"
    shutil.copytree(REPO / "index", broken)
    (broken / "vectors.faiss").write_bytes(b"garbage")
    assert main(["ask", "--index", str(broken), "install"]) == 2
    err = capsys.readouterr().err
    assert "faqbot index" in err and "Traceback" not in err


@pytest.mark.slow  # the real model and shipped index
def test_unknown_filters_are_refused(capsys):
    assert main(["ask", "--version", "r0.1", "install"]) == 2
    assert main(["ask", "--component", "nothing", "install"]) == 2
    err = capsys.readouterr().err
    assert "r0.1" in err and "nothing" in err


@pytest.mark.slow  # the real model and shipped index
def test_index_check_reports_the_shipped_index_up_to_date(capsys):
    assert main(["index", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


@pytest.mark.slow  # the real model and shipped index
def test_console_script_answers_a_fresh_question():
    exe = shutil.which("faqbot", path=os.path.dirname(sys.executable))
    assert exe, "the faqbot console script is installed"
    proc = subprocess.run([exe, "ask", "--json", "How do I install MindSpore with pip?"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["answers"]
