"""Evaluate faqbot on public FAQs no one here wrote (../shared/faqs/), read as published.

For each corpus: (1) reading: entries found vs entries there (counted here by a plain rule per FAQ, independent
of the loaders), languages vs the language each file is published in, zh/en pairs vs a reference (ant-design:
tests/data/faq_questions/pairs.json, checked by hand; APISIX markdown: the ids of the shared faq.csv);
(2) retrieval: an index per corpus built in a temporary folder (never in the project), then this project's own
questions (tests/data/faq_questions/<faq>.jsonl: written from a user's situation, labels are substrings of the
entry's question) through Retriever.rank with the MindSpore tuning constants unchanged.

Two corpora are made here, in the temporary folder, as CSVs with an `alternates` cell:
- PaddlePaddle's pages: each question's clauses (split at ，；？ and , ; ?) as shorter wordings, when it has two or
  more of 6+ characters; its page's name as `category`, and a link to the published page;
- ripgrep's FAQ.md: its table-of-contents wording where it differs from the heading, and the heading's anchor name
  as words.

The questions come in two sets: `--split test` (the default, tests/data/faq_questions/<faq>.jsonl: report only)
and `--split tune` (tests/data/faq_questions/tune/<faq>.jsonl: written later, for choosing a ranking rule).
`--sweep` ranks the chosen set under each candidate cross-lingual BM25 rule (RankingParams.cross_lexical) and
prints a line per rule and corpus plus the totals over all corpora: choose on `--split tune`, never on test.

    .venv/bin/python scripts/eval_faqs.py [--faqs ../shared/faqs] [--split tune] [--only ant-design] [--misses]
        [--diagnose] [--sweep]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from faqbot.devset import DevQuestion  # noqa: E402
from faqbot.evaluate import judge, metrics  # noqa: E402
from faqbot.sources import load_corpus  # noqa: E402

DATA = ROOT / "tests" / "data" / "faq_questions"
SPLITS = {"test": DATA, "tune": DATA / "tune"}  # the tuning questions are separate files, never the test ones
# the candidate rules --sweep compares: RankingParams fields beside the shipped values
SWEEP = [{"cross_lexical": "all"}, {"cross_lexical": "item", "cross_lexical_scale": 0.0},
         {"cross_lexical": "item", "cross_lexical_scale": 0.5}, {"cross_lexical": "corpus", "cross_lexical_scale": 0.0},
         {"cross_lexical": "corpus", "cross_lexical_scale": 0.5}]
FENCE = re.compile(r"^\s*(```|~~~)")


def _outside_fences(text: str) -> list[str]:
    out, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def count_h2(text: str) -> int:
    """`## ` headings outside code (ant-design, APISIX: every question is one)."""
    return sum(1 for ln in _outside_fences(text) if ln.startswith("## "))


def count_paddle(text: str) -> int:
    """`#...# 问题：` headings (PaddlePaddle)."""
    return sum(1 for ln in _outside_fences(text) if re.match(r"^#{2,6}\s*问题[:：]", ln))


def count_h3_html(text: str) -> int:
    """`<h3 name=...>` blocks (ripgrep)."""
    return len(re.findall(r"^<h3 name=", text, re.M))


def count_csv_rows(text: str) -> int:
    return sum(1 for _ in csv.DictReader(text.splitlines(keepends=True)))


def ripgrep_csv(faqs: Path, out: Path) -> Path:
    """ripgrep's FAQ.md as a CSV of id, lang, question, answer, url, alternates."""
    text = (faqs / "ripgrep" / "FAQ.md").read_text(encoding="utf-8")
    toc = dict((name, q) for q, name in re.findall(r"^\* \[(.+)\]\(#([\w-]+)\)$", text, re.M))
    corpus = load_corpus(faqs / "ripgrep" / "FAQ.md")
    path = out / "ripgrep-faq.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lang", "question", "answer", "url", "alternates"])
        for e in corpus.entries:
            name = next((n for n, q in toc.items() if n and e.url.endswith(f"#{n}")), "") or _anchor(text, e.question)
            alts = [toc[name]] if name in toc and toc[name].replace("`", "") != e.question.replace("`", "") else []
            alts.append(name.replace("-", " "))
            w.writerow([f"rg-{name}", "en", e.question, e.answer,
                        f"https://github.com/BurntSushi/ripgrep/blob/master/FAQ.md#{name}", "|".join(alts)])
    return path


def paddle_csv(faqs: Path, out: Path) -> Path:
    """PaddlePaddle's FAQ pages as a CSV of id, lang, question, answer, url, category, alternates."""
    path = out / "paddlepaddle-faq.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lang", "question", "answer", "url", "category", "alternates"])
        for page in sorted((faqs / "paddlepaddle").glob("*.md")):
            for n, e in enumerate(load_corpus(page).entries, 1):
                clauses = [c.strip() for c in re.split(r"[，；？,;?]", e.question) if len(c.strip()) >= 6]
                w.writerow([f"{page.stem}-{n}", e.lang, e.question, e.answer,
                            f"https://www.paddlepaddle.org.cn/documentation/docs/zh/faq/{page.stem}.html",
                            page.stem.removesuffix("_cn"), "|".join(clauses) if len(clauses) >= 2 else ""])
    return path


def _anchor(text: str, question: str) -> str:
    for name, body in re.findall(r'<h3 name="([^"]+)">\s*(.*?)\s*</h3>', text, re.S):
        if " ".join(re.sub(r"</?code>", "`", body).split()) == question:
            return name
    return ""


def corpora(faqs: Path, tmp: Path) -> dict[str, dict]:
    """name -> files (relative to faqs, or absolute), how to count what is there, the language of each file."""
    apisix_truth = load_corpus(faqs / "apisix" / "faq.csv")
    apisix_pairs = {(i.entries["zh"].question, i.entries["en"].question) for i in apisix_truth.items if i.bilingual}
    return {
        "ant-design": {"files": ["ant-design/faq.en-US.md", "ant-design/faq.zh-CN.md"], "count": count_h2,
                       "lang": {"faq.en-US.md": "en", "faq.zh-CN.md": "zh"}, "questions": "ant-design",
                       "pairs": "ant-design"},
        "paddlepaddle": {"files": sorted(p.relative_to(faqs).as_posix() for p in (faqs / "paddlepaddle").glob("*.md")),
                         "count": count_paddle, "lang": {"*": "zh"}, "questions": "paddlepaddle", "pairs": set()},
        "paddlepaddle-csv (alternates)": {"files": [str(paddle_csv(faqs, tmp))], "count": count_csv_rows,
                                          "lang": {"*": "zh"}, "questions": "paddlepaddle", "pairs": set()},
        "apisix": {"files": ["apisix/en/latest/FAQ.md", "apisix/zh/latest/FAQ.md"], "count": count_h2,
                   "lang": {"en/latest/FAQ.md": "en", "zh/latest/FAQ.md": "zh"}, "questions": "apisix",
                   "pairs": apisix_pairs},
        "apisix-csv": {"files": ["apisix/faq.csv"], "count": count_csv_rows, "lang": {"csv": "lang column"},
                       "questions": "apisix", "pairs": apisix_pairs},
        "ripgrep": {"files": ["ripgrep/FAQ.md"], "count": count_h3_html, "lang": {"*": "en"},
                    "questions": "ripgrep", "pairs": set()},
        "ripgrep-csv (alternates)": {"files": [str(ripgrep_csv(faqs, tmp))], "count": count_csv_rows,
                                     "lang": {"*": "en"}, "questions": "ripgrep", "pairs": set()},
    }


def reference_pairs(name) -> set[tuple[str, str]] | list[list[str]]:
    return json.loads((DATA / "pairs.json").read_text(encoding="utf-8"))[name]["pairs"]


def check_reading(corpus, spec, faqs: Path) -> dict:
    there = 0
    for f in spec["files"]:
        p = Path(f) if Path(f).is_absolute() else faqs / f
        there += spec["count"](p.read_text(encoding="utf-8-sig"))
    wrong_lang = []
    for e in corpus.entries:
        expected = next((lang for suffix, lang in spec["lang"].items() if suffix != "*" and e.page.endswith(suffix)),
                        spec["lang"].get("*"))
        if expected == "lang column":
            continue  # checked against the csv's own column below
        if e.lang != expected:
            wrong_lang.append(e.question[:60])
    pairs = [(i.entries["zh"].question, i.entries["en"].question) for i in corpus.items if i.bilingual]
    ref = spec["pairs"]
    if isinstance(ref, str):  # question prefixes, checked by hand
        prefixes = reference_pairs(ref)
        wrong = [p for p in pairs if not any(p[0].startswith(z) and p[1].startswith(e) for z, e in prefixes)]
        expected_pairs = len(prefixes)
    else:
        wrong = [p for p in pairs if p not in ref]
        expected_pairs = len(ref)
    return {"found": len(corpus.entries), "there": there, "wrong_lang": wrong_lang, "pairs": len(pairs),
            "expected_pairs": expected_pairs, "wrong_pairs": wrong, "problems": [p.message for p in corpus.problems]}


def gold(items, labels: list[str]) -> tuple[str, ...]:
    ids = tuple(it.id for it in items if any(lab in e.question for e in it.entries.values() for lab in labels))
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faqs", type=Path, default=ROOT.parent / "shared" / "faqs")
    ap.add_argument("--only", action="append", help="evaluate only this corpus (repeatable)")
    ap.add_argument("--split", choices=sorted(SPLITS), default="test",
                    help="which questions: test (default; report only) or tune (for choosing a rule)")
    ap.add_argument("--misses", action="store_true", help="list the questions ranked wrong or refused")
    ap.add_argument("--sweep", action="store_true",
                    help="also rank the questions under each candidate cross-lingual BM25 rule (use with --split tune)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--diagnose", action="store_true",
                    help="also print R@1/R@3 per channel and per lexical_weight (a diagnosis: constants are never chosen here)")
    args = ap.parse_args(argv)

    from faqbot.embed import DEFAULT_MODEL, load_embedder
    from faqbot.search import Retriever
    from faqbot.store import build

    t0 = time.perf_counter()
    embedder = load_embedder(DEFAULT_MODEL)
    print(f"model {DEFAULT_MODEL} loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows, failures, swept = [], 0, []
    with tempfile.TemporaryDirectory(prefix="faqbot-eval-faqs-") as tmpdir:
        tmp = Path(tmpdir)
        for name, spec in corpora(args.faqs, tmp).items():
            if args.only and name not in args.only:
                continue
            folder = tmp / "corpora" / re.sub(r"\W+", "-", name)
            for f in spec["files"]:
                src = Path(f) if Path(f).is_absolute() else args.faqs / f
                dst = folder / (src.name if Path(f).is_absolute() else Path(f).relative_to(Path(f).parts[0]))
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
            corpus = load_corpus(folder)
            reading = check_reading(corpus, spec, args.faqs)
            started = time.perf_counter()
            stored = build(corpus, embedder, tmp / "index" / folder.name, progress=False, reuse=False)
            build_s = time.perf_counter() - started
            retriever = Retriever(stored.dense, stored.lexical, embedder)
            corpus_langs = {e.lang for e in corpus.entries}
            questions, unlabelled = [], []
            for line in (SPLITS[args.split] / f"{spec['questions']}.jsonl").read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                ids = gold(corpus.items, row["labels"])
                if row["labels"] and not ids:
                    unlabelled.append(row["q"])
                kind = "offtopic" if not row["labels"] else ("cross" if row["lang"] not in corpus_langs else "same")
                questions.append(DevQuestion(row["q"], row["lang"], kind, ids, source=spec["questions"]))
            judged = judge(retriever, questions)
            m = metrics(judged)
            cross = metrics([j for j in judged if j.question.kind == "cross"])
            row = {"corpus": name, **{k: reading[k] for k in ("found", "there", "pairs", "expected_pairs")},
                   "wrong_lang": len(reading["wrong_lang"]), "wrong_pairs": len(reading["wrong_pairs"]),
                   "problems": len(reading["problems"]), "alternates": len(corpus.alternates),
                   "n": m.n, "r1": m.r1, "r3": m.r3, "asserted": m.asserted, "precision": m.answer_precision,
                   "offtopic": m.n_offtopic, "offtopic_asserted": m.offtopic_asserted,
                   "cross_n": cross.n, "cross_r1": cross.r1 if cross.n else float("nan"),
                   "build_s": round(build_s, 1), "entries": len(corpus.entries), "unlabelled": unlabelled}
            rows.append(row)
            bad = (reading["found"] != reading["there"] or reading["wrong_lang"] or reading["wrong_pairs"]
                   or unlabelled or reading["problems"])
            failures += bool(bad)
            for what in ("wrong_lang", "wrong_pairs", "problems"):
                for x in reading[what]:
                    print(f"  {name}: {what}: {x}", file=sys.stderr)
            for q in unlabelled:
                print(f"  {name}: no entry matches the labels of {q!r}", file=sys.stderr)
            if args.diagnose:
                diagnose(name, retriever, questions)
            if args.sweep:
                swept += sweep(name, retriever, questions)
            if args.misses:
                for miss in m.misses:
                    print(f"  {name}: miss {miss}", file=sys.stderr)
    print(format_table(rows))
    if swept:
        print(format_sweep(swept))
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return 1 if failures else 0


def diagnose(name: str, retriever, questions) -> None:
    from dataclasses import replace

    from faqbot.evaluate import channel_params

    for channel in ("final", "dense", "bm25"):
        m = metrics(judge(retriever, questions, channel_params(retriever.params, channel)))
        print(f"  {name}: channel {channel}: R@1 {m.r1:.3f} R@3 {m.r3:.3f}", file=sys.stderr)
    for weight in (0.0, 0.05, 0.075, 0.10, 0.15, 0.25):
        m = metrics(judge(retriever, questions, replace(retriever.params, lexical_weight=weight)))
        print(f"  {name}: lexical_weight {weight}: R@1 {m.r1:.3f} R@3 {m.r3:.3f}", file=sys.stderr)


def sweep(name: str, retriever, questions) -> list[dict]:
    """Each candidate rule of SWEEP on these questions: right first / right in 3 / cross-lingual right first."""
    from dataclasses import replace

    out = []
    for change in SWEEP:
        judged = judge(retriever, questions, replace(retriever.params, **change))
        m = metrics(judged)
        cross = [j for j in judged if j.question.kind == "cross"]
        cm = metrics(cross) if cross else None
        out.append({"rule": _rule(change), "corpus": name, "n": m.n, "r1": m.r1, "r3": m.r3,
                    "cross_n": len(cross), "cross_r1": cm.r1 if cm else float("nan"),
                    "asserted": m.asserted, "precision": m.answer_precision,
                    "offtopic_asserted": round(m.offtopic_asserted * m.n_offtopic) if m.n_offtopic else 0})
    return out


def _rule(change: dict) -> str:
    from faqbot.search import RankingParams

    shipped = all(getattr(RankingParams(), k) == v for k, v in change.items())
    name = change["cross_lexical"] + (f" x{change['cross_lexical_scale']}" if "cross_lexical_scale" in change else "")
    return name + (" (shipped)" if shipped else "")


def format_sweep(swept: list[dict]) -> str:
    lines = ["", "| rule | corpus | R@1 | R@3 | cross-lingual R@1 (n) | asserted | asserted right | off-topic asserted |",
             "|---|---|---|---|---|---|---|---|"]
    for r in swept:
        lines.append(f"| {r['rule']} | {r['corpus']} | {_f(r['r1'])} | {_f(r['r3'])} | {_f(r['cross_r1'])} ({r['cross_n']}) "
                     f"| {r['asserted']} | {_f(r['precision'])} | {r['offtopic_asserted']} |")
    for rule in dict.fromkeys(r["rule"] for r in swept):
        rs = [r for r in swept if r["rule"] == rule]
        first = sum(round(r["r1"] * r["n"]) for r in rs)
        three = sum(round(r["r3"] * r["n"]) for r in rs)
        cross = sum(round(r["cross_r1"] * r["cross_n"]) for r in rs if r["cross_n"])
        lines.append(f"| {rule} | total ({sum(r['n'] for r in rs)} in scope; cross {sum(r['cross_n'] for r in rs)}) "
                     f"| {first} right first | {three} in 3 | {cross} | {sum(r['asserted'] for r in rs)} | | "
                     f"{sum(r['offtopic_asserted'] for r in rs)} |")
    return "\n".join(lines)


def _f(x: float) -> str:
    return "  n/a" if x != x else f"{x:.3f}"


def format_table(rows: list[dict]) -> str:
    head = ("| corpus | entries found / there | wrong lang | pairs (expected) | wrong pairs | questions | R@1 | R@3 "
            "| asserted | asserted right | off-topic asserted | cross-lingual R@1 (n) | index build |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['corpus']} | {r['found']} / {r['there']} | {r['wrong_lang']} | {r['pairs']} ({r['expected_pairs']}) "
            f"| {r['wrong_pairs']} | {r['n']} | {_f(r['r1'])} | {_f(r['r3'])} | {r['asserted']} | {_f(r['precision'])} "
            f"| {round(r['offtopic_asserted'] * r['offtopic']) if r['offtopic'] else 0}/{r['offtopic']} "
            f"| {_f(r['cross_r1'])} ({r['cross_n']}) | {r['build_s']} s ({r['entries']} entries) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
