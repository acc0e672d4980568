"""The `faqbot ask` output contract (README) on the fixture index: the CLI's own code with HashEmbedder in place
of the model, so it runs in the fast tier; test_cli_ask.py checks the same on the real model (slow)."""

from __future__ import annotations

import io
import json
import sys
from unittest import mock

from faqbot import cli

ANSWER_KEYS = {"id", "question", "questions", "answer", "url", "source_url", "version", "component", "score"}


def run_cli(fake_retriever, argv: list[str], stdin: bytes = b"") -> tuple[int, str]:
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    with mock.patch.object(cli, "_load_retriever", lambda args: (fake_retriever, None)), \
            mock.patch.object(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")), \
            mock.patch.object(sys, "stdout", stdout):
        code = cli.main(argv)
    stdout.flush()
    return code, out.getvalue().decode("utf-8")


def test_ask_json_is_one_object_with_the_contract_fields(fake_retriever):
    code, out = run_cli(fake_retriever, ["ask", "--json", "--k", "3", "如何卸载MindSpore"])
    obj = json.loads(out)
    assert code == 0 and {"query", "lang", "in_scope", "confidence", "answers"} <= set(obj)
    assert obj["lang"] == "zh" and len(obj["answers"]) == 3
    assert all(ANSWER_KEYS <= set(a) and set(a["questions"]) == {"zh", "en"} for a in obj["answers"])
    scores = [a["score"] for a in obj["answers"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_jsonl_answers_each_line_in_order_and_an_empty_line_gets_no_answers(fake_retriever):
    lines = ["如何卸载MindSpore", "", "ERR_UNSAFE_PORT", "what is the weather in Paris"]
    code, out = run_cli(fake_retriever, ["ask", "--jsonl", "--k", "2"], ("\n".join(lines) + "\n").encode())
    objs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [o["query"] for o in objs] == lines
    assert objs[1]["answers"] == [] and objs[1]["message"]
    assert all(len(o["answers"]) == 2 for o in objs if o["query"])


def test_ask_readable_answer_names_its_sources_or_says_not_covered(fake_retriever):
    code, out = run_cli(fake_retriever, ["ask", "How to uninstall MindSpore?"])
    assert code == 0 and out.strip()
    assert "https://www.mindspore.cn/" in out or "not covered" in out


def test_related_questions_in_the_terminal_keep_the_component_filter(fake_retriever):
    """`faqbot ask --component X`: every question listed under the answer comes from component X, even for an
    entry whose nearest neighbours overall are in another component."""
    from faqbot.schema import Hit, SearchResult

    r = fake_retriever
    item = next(it for it in r.items if it.component == "mindinsight" and "en" in it.entries
                and any(h.item.component != "mindinsight" for h in r.related(it.id, "en", k=3, version="all")))
    answered = SearchResult("q", "en", True, [Hit(item, 1.0, "en")], confidence=1.5)
    with mock.patch.object(type(r), "search", lambda self, *a, **k: answered):
        code, out = run_cli(r, ["ask", "--version", "all", "--component", "mindinsight", "q"])
    assert code == 0
    listed = [line.strip()[2:] for line in out.splitlines() if line.startswith("  - ")]
    components: dict[str, set] = {}
    for it in r.items:
        for e in it.entries.values():
            components.setdefault(" ".join(e.question.split()), set()).add(it.component)
    assert listed and all(components[q] == {"mindinsight"} for q in listed)
