"""Learning from use, simulated: replay part of the dev set as chat traffic with votes, approve the right
proposals, and measure on the questions that were not replayed (issue 11 item 3).

    python scripts/simulate_learning.py              # the table in docs/retrieval.md
    python scripts/simulate_learning.py --json       # the same figures as one JSON object

Everything happens on copies in a temporary folder: corpus/ (with its alternates.jsonl) and index/ are copied,
feedback goes to a new SQLite file. The shipped index and alternates file are never written.

The split. Alternates attach to an FAQ item, so they can only help later questions about the items that had
traffic. The dev set's tune/heldout split is by FAQ page, so replaying one side and measuring the other would
measure items that never got any traffic (no change by construction). Instead, each item's dev questions are
split at random (`--seed`): `--share` of them (at least one, never all) are replayed as traffic, the rest are
measured; an item with a single question is only measured; off-topic and near-miss questions are split the same
way (traffic has them too, and measuring them shows whether alternates make the bot assert what it should not).
A measured question whose wording equals a replayed one is dropped. The table also shows the measured questions
on the held-out pages of the page split (the calibration was fit on the other pages).

The simulated user knows only the gold label of the question they ask, as a real user recognises the right
answer when they see it: they never see scores, the dev set's other labels or the measured questions.
- The reply shows an entry (level `answer`, or `related` with its best entry under "May be related") and it is
  the gold entry: 👍.
- It shows a wrong entry: 👎. Then, as for a `none` reply, they look for the right one: they click the offered
  suggestion that is the gold entry's question (in either language) if there is one, and 👍 its answer if right;
  otherwise they rephrase once, with another replayed question of the same item, and 👍 the answer if right.
- A question the FAQ does not cover: 👎 if an answer is asserted, nothing otherwise.
The chat (`FaqChat.respond`, `respond_to_click`, `vote` in web.py) decides what is evidence, exactly as in the
browser: a like, a click after a `related`/"not covered" reply, a rephrasing after one that then got a like.

The reviewer runs `faqbot feedback suggest --json`, then `faqbot feedback approve` for every proposal whose
(wording -> entry) pair is right by the gold label of that wording and `faqbot feedback reject` for the others,
on the copied alternates file and index.

Choices and figures. The measured questions are reported on the two sides of the dev set's page split. Constants
of the learning loop (RankingParams.alternate_discount, feedback.MAX_PROPOSAL_CHARS) were chosen on the measured
questions of the tune pages only; `--discounts 0,0.01,...` prints that sweep. The held-out pages' rows are
questions no choice saw.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from faqbot.alternates import Alternate, alternates_path, append_alternates, load_alternates, today  # noqa: E402
from faqbot.config import Settings  # noqa: E402
from faqbot.devset import DevQuestion, assign_splits, load_dev_data  # noqa: E402
from faqbot.evaluate import Judged, Metrics, judge, metrics  # noqa: E402
from faqbot.feedback import MAX_PROPOSAL_CHARS, FeedbackStore, mask_personal, wording_key  # noqa: E402
from faqbot.search import Retriever  # noqa: E402
from faqbot.store import apply_alternates  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REVIEWER = "simulated-reviewer"
# Reviewer policies: "every" approves every right pair that `suggest` proposes (it no longer proposes pastes
# longer than feedback.MAX_PROPOSAL_CHARS); "missed" approves only right pairs with click or rephrase evidence
# (wordings the bot did not answer), rejecting the others.
POLICIES = ("every", "missed")


# ---------------------------------------------------------------- workspace


def copy_workspace(root: Path, corpus_dir: Path | None = None, index_dir: Path = REPO / "index") -> Settings:
    """Settings on copies of the corpus (with its alternates file) and the index under `root`, and a new
    feedback database there: whatever the simulation approves lands in the copies only. The corpus: by default
    $FAQBOT_CORPUS, else ../shared/corpus next to the project (corpus/README.md); index/ is built from it."""
    corpus_dir = corpus_dir or Path(os.environ.get("FAQBOT_CORPUS") or REPO.parent / "shared" / "corpus")
    shutil.copytree(corpus_dir, root / "corpus")
    (root / "corpus").chmod(0o755)  # the pages may come from a read-only folder; the alternates file goes here
    alternates_path(root / "corpus").touch()  # none yet: an empty one (the same, to the index, as no file)
    shutil.copytree(index_dir, root / "index", ignore=shutil.ignore_patterns("*.lock"))
    return Settings(corpus_dir=root / "corpus", index_dir=root / "index", feedback_db=root / "feedback.sqlite3")


def open_retriever(settings: Settings) -> Retriever:
    """The ranking the app would serve from this index folder (the model is loaded once per process)."""
    return Retriever.from_settings(settings, rebuild=False)


# ---------------------------------------------------------------- the split


def gold_key(q: DevQuestion) -> tuple[str, ...]:
    return tuple(sorted(q.gold_ids))


def split_traffic(questions: list[DevQuestion], seed: int = 0, share: float = 0.5) -> tuple[list[DevQuestion], list[DevQuestion]]:
    """(replayed, measured): per gold item, `share` of its questions (at least one, never all) are replayed;
    single-question items are measured only; uncovered questions are split by the same share. A measured
    question worded like a replayed one is dropped (it would be measuring the replayed wording itself)."""
    rng = random.Random(seed)
    groups: dict[tuple[str, ...], list[DevQuestion]] = defaultdict(list)
    for q in questions:
        groups[gold_key(q)].append(q)
    replay, measure = [], []
    for key in sorted(groups):
        qs = sorted(groups[key], key=lambda q: (q.q, q.source))
        rng.shuffle(qs)
        if key:
            n = min(len(qs) - 1, max(1, int(len(qs) * share))) if len(qs) > 1 else 0
        else:  # uncovered: one group of all of them
            n = int(len(qs) * share)
        replay += qs[:n]
        measure += qs[n:]
    replayed = {wording_key(q.q) for q in replay}
    return replay, [q for q in measure if wording_key(q.q) not in replayed]


def slice_items(questions: list[DevQuestion], n_items: int, seed: int = 0) -> list[DevQuestion]:
    """A small slice for a quick run: `n_items` items with two or more questions, and as many uncovered ones."""
    groups: dict[tuple[str, ...], list[DevQuestion]] = defaultdict(list)
    for q in questions:
        groups[gold_key(q)].append(q)
    keys = sorted(k for k, qs in groups.items() if k and len(qs) > 1)
    random.Random(seed).shuffle(keys)
    uncovered = sorted(groups.get((), []), key=lambda q: q.q)[: n_items]
    return [q for k in keys[:n_items] for q in groups[k]] + uncovered


# ---------------------------------------------------------------- the simulated users


def gold_wordings(retriever: Retriever, gold_ids: tuple[str, ...]) -> set[str]:
    """The questions of the gold entries in every language, as the user would recognise them among suggestions."""
    out = set()
    for gid in gold_ids:
        item = retriever.item(gid)
        if item is not None:
            out |= {" ".join(e.question.split()) for e in item.entries.values()}
    return out


@dataclass
class Traffic:
    """What the simulated users did (counts per outcome) and how many chat turns it took."""

    outcomes: Counter = field(default_factory=Counter)
    turns: int = 0
    sessions: int = 0


def _shown(meta) -> str | None:
    """The entry a reply shows: the answer, or the best entry of a `related` reply; None for "not covered"."""
    return meta.item_id if meta.level in ("answer", "related") else None


def replay(chat, questions: list[DevQuestion], seed: int = 0) -> Traffic:
    """Each question is one user in a new chat session, through FaqChat exactly as the browser drives it."""
    rng = random.Random(seed + 1)
    by_item: dict[tuple[str, ...], list[DevQuestion]] = defaultdict(list)
    for q in questions:
        by_item[gold_key(q)].append(q)
    traffic = Traffic()
    for n, dq in enumerate(questions, 1):
        session = SimpleNamespace(session_hash=f"sim-{seed}-{n}")
        traffic.sessions += 1
        outcome = _one_user(chat, dq, [o for o in by_item[gold_key(dq)] if o is not dq], rng, session, traffic)
        traffic.outcomes[outcome] += 1
    chat.store.flush(30)
    return traffic


def _vote(chat, answers, index: int, liked: bool, session) -> None:
    chat.vote(answers, SimpleNamespace(index=index, liked=liked), session)


def _one_user(chat, dq: DevQuestion, others: list[DevQuestion], rng: random.Random, session, traffic: Traffic) -> str:
    gold = set(dq.gold_ids)
    _, history, answers = chat.respond(dq.q, [], "latest", "", {})
    traffic.turns += 1
    index = len(history) - 1
    meta = answers.at_message(index)
    shown = _shown(meta)
    if not gold:  # the FAQ does not cover it; the user knows a wrong answer when they see one
        if meta.level == "answer":
            _vote(chat, answers, index, False, session)
            return "uncovered: asserted, disliked"
        return "uncovered: not asserted"
    if shown in gold:
        _vote(chat, answers, index, True, session)
        return f"right {meta.level}, liked"
    if shown:
        _vote(chat, answers, index, False, session)
    first = "wrong answer" if meta.level == "answer" else ("related, wrong entry" if shown else "not covered")
    wanted = gold_wordings(chat.retriever, dq.gold_ids)
    option = next((o["value"] for o in history[-1].get("options", []) if " ".join(o["value"].split()) in wanted), None)
    if option is not None:
        _, history, answers = chat.respond_to_click(history, "latest", "", answers,
                                                    SimpleNamespace(value={"text": option}), session)
        traffic.turns += 1
        index = len(history) - 1
        if _shown(answers.at_message(index)) in gold:
            _vote(chat, answers, index, True, session)
            return f"{first}: clicked the right suggestion, liked"
        return f"{first}: clicked the right suggestion, wrong answer"
    if not others:
        return f"{first}: gave up (no suggestion, no other wording)"
    other = rng.choice(others)
    _, history, answers = chat.respond(other.q, history, "latest", "", answers)
    traffic.turns += 1
    index = len(history) - 1
    if _shown(answers.at_message(index)) in gold:
        _vote(chat, answers, index, True, session)
        return f"{first}: rephrased, liked"
    return f"{first}: rephrased, still wrong"


# ---------------------------------------------------------------- the reviewer


def faqbot(*argv: str) -> tuple[int, str]:
    """`faqbot ARGV` in this process (the model stays loaded): exit code and what it printed."""
    from faqbot.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def gold_by_wording(questions: list[DevQuestion]) -> dict[str, set[str]]:
    """Wording key -> the item ids that answer it, for the stored form of the text (masked) as well."""
    out: dict[str, set[str]] = defaultdict(set)
    for q in questions:
        for text in (q.q, mask_personal(" ".join(q.q.split()))):
            out[wording_key(text)] |= set(q.gold_ids)
    return out


@dataclass
class Review:
    proposals: list[dict]
    approved: list[dict]
    rejected: list[dict]


def review(settings: Settings, gold: dict[str, set[str]], by: str = REVIEWER, policy: str = "every") -> Review:
    """A person going through `faqbot feedback suggest`: approve the right pairs, reject the wrong ones (and,
    with the other policies, the right ones the policy leaves out; see POLICIES)."""
    db = str(settings.feedback_db)
    code, text = faqbot("feedback", "suggest", "--json", "--db", db)
    if code != 0:
        raise RuntimeError(f"faqbot feedback suggest failed ({code})")
    proposals = json.loads(text)
    approved = [p for p in proposals if p["item_id"] in gold.get(wording_key(p["wording"]), set())
                and (policy == "every" or (policy == "missed" and p["clicks"] + p["rephrases"] > 0))]
    rejected = [p for p in proposals if p not in approved]
    if rejected:
        code, _ = faqbot("feedback", "reject", *[str(p["n"]) for p in rejected], "--db", db)
        if code != 0:
            raise RuntimeError(f"faqbot feedback reject failed ({code})")
    if approved:
        code, _ = faqbot("feedback", "approve", *[str(p["n"]) for p in approved], "--db", db,
                         "--alternates", str(alternates_path(settings.corpus_dir)),
                         "--index", str(settings.index_dir), "--by", by)
        if code != 0:
            raise RuntimeError(f"faqbot feedback approve failed ({code})")
    return Review(proposals, approved, rejected)


# ---------------------------------------------------------------- measuring


def held_out_pages() -> set[str]:
    """Pages on the held-out side of the whole dev set's page split (no constant was chosen on them)."""
    return {page for page, side in assign_splits(load_dev_data()).items() if side == "heldout"}


def page_sides(measured: list[DevQuestion]) -> dict[str, list[DevQuestion]]:
    """The measured questions on the tune pages (constants chosen there) and on the held-out pages."""
    heldout = held_out_pages()
    return {"tune pages": [q for q in measured if q.page not in heldout],
            "held-out pages": [q for q in measured if q.page in heldout]}


def subsets(measured: list[DevQuestion], taught: set[str]) -> dict[str, list[DevQuestion]]:
    """The measured questions, and the parts of them worth reading apart."""
    return {
        "all measured": measured,
        **page_sides(measured),
        "taught items": [q for q in measured if set(q.gold_ids) & taught],
        "untaught items": [q for q in measured if q.gold_ids and not set(q.gold_ids) & taught],
    }


def scores(judged: list[Judged], questions: list[DevQuestion]) -> Metrics:
    want = {id(q) for q in questions}
    return metrics([j for j in judged if id(j.question) in want])


def _f(x: float) -> str:
    return "   n/a" if x != x else f"{x:6.3f}"


def format_table(rows: list[tuple[str, str, str, Metrics]]) -> str:
    head = (f"{'questions':<15} {'lang':<4} {'when':<6} {'n':>4} {'R@1':>6} {'R@3':>6} | {'answer':>6} {'related':>7} "
            f"{'none':>6} {'ans.prec':>8} | {'off':>4} {'off.ans':>7} {'hard':>4} {'hard.ans':>8}")
    lines = [head, "-" * len(head)]
    for name, lang, when, m in rows:
        answer = 1 - m.covered_none - m.covered_related if m.n else float("nan")
        lines.append(f"{name:<15} {lang:<4} {when:<6} {m.n:>4} {m.r1:>6.3f} {m.r3:>6.3f} | {_f(answer):>6} "
                     f"{_f(m.covered_related):>7} {_f(m.covered_none):>6} {_f(m.answer_precision):>8} | "
                     f"{m.n_offtopic:>4} {_f(m.offtopic_asserted):>7} {m.n_hard:>4} {_f(m.hard_asserted):>8}")
    return "\n".join(lines)


# ---------------------------------------------------------------- a new alternate, end to end


def time_new_alternate(settings: Settings, current: Retriever, candidates: list[DevQuestion], runs: int = 3) -> list[dict]:
    """Seconds from appending one alternate to a fresh search finding it on top: append_alternates +
    apply_alternates + opening the updated index + the search. Uses measured questions the index missed that
    `suggest` could propose (at most MAX_PROPOSAL_CHARS characters: a long paste also costs a long embedding)."""
    path = alternates_path(settings.corpus_dir)
    latest = {it.id for it, shown in zip(current.items, current.filter_mask("latest")) if shown}
    out = []
    for dq in candidates:
        if len(out) >= runs:
            break
        if not dq.gold_ids or len(" ".join(dq.q.split())) > MAX_PROPOSAL_CHARS \
                or current.search(dq.q, k=1).hits[0].item.id in dq.gold_ids:
            continue
        # the entry a user would have liked: one the default (latest) search can show, not its older copy
        target = next((g for g in dq.gold_ids if g in latest), dq.gold_ids[0])
        alt = Alternate(id=target, lang=dq.lang if dq.lang in ("zh", "en") else "en",
                        question=" ".join(dq.q.split()), approved_by=REVIEWER, approved_at=today())
        started = time.perf_counter()
        append_alternates(path, [alt])
        applied = time.perf_counter()
        apply_alternates(settings.model_index_dir, current.embedder, path)
        opened = time.perf_counter()
        after = open_retriever(settings)
        loaded = time.perf_counter()
        top = after.search(dq.q, k=1).hits[0].item.id
        done = time.perf_counter()
        out.append({"question": dq.q[:60], "chars": len(alt.question), "found": top == alt.id, "append": round(applied - started, 3),
                    "apply": round(opened - applied, 3), "open": round(loaded - opened, 3),
                    "search": round(done - loaded, 3), "total": round(done - started, 3)})
    return out


# ---------------------------------------------------------------- the whole run


def sweep_discounts(after: Retriever, measured: list[DevQuestion], discounts: list[float]) -> list[dict]:
    """R@1, answer precision and near misses asserted with the alternates scored at each discount, per page side:
    how RankingParams.alternate_discount was chosen (on the tune pages)."""
    out = []
    for d in discounts:
        judged = judge(after, measured, params=replace(after.params, alternate_discount=d))
        for side, qs in {"all measured": measured, **page_sides(measured)}.items():
            m = scores(judged, qs)
            out.append({"discount": d, "questions": side, "n": m.n, "r1": round(m.r1, 4), "r3": round(m.r3, 4),
                        "answer_precision": round(m.answer_precision, 4), "hard_asserted": round(m.hard_asserted, 4)})
    return out


def simulate(settings: Settings, questions: list[DevQuestion], seed: int = 0, share: float = 0.5,
             timing_runs: int = 3, log=print, split: tuple[list[DevQuestion], list[DevQuestion]] | None = None,
             policy: str = "every", discounts: list[float] | None = None) -> dict:
    """Replay, review, measure; `settings` must point at copies (see `copy_workspace`). `split`: (replayed,
    measured) chosen by the caller instead of `split_traffic(questions, seed, share)`. `discounts`: also measure
    the alternates scored at these discounts (see `sweep_discounts`)."""
    from faqbot.web import FaqChat

    replayed, measured = split or split_traffic(questions, seed, share)
    log(f"{len(replayed)} questions replayed as traffic, {len(measured)} measured "
        f"({sum(bool(q.gold_ids) for q in measured)} covered)")
    before = open_retriever(settings)
    store = FeedbackStore.from_settings(settings)
    chat = FaqChat(before, settings, store=store)
    started = time.perf_counter()
    traffic = replay(chat, replayed, seed)
    log(f"replayed in {time.perf_counter() - started:.0f} s: {traffic.turns} chat turns")
    judged_before = judge(before, measured)
    decided = review(settings, gold_by_wording(replayed), policy=policy)
    store.close(5)
    log(f"{len(decided.proposals)} proposals: {len(decided.approved)} approved, {len(decided.rejected)} rejected")
    after = open_retriever(settings)
    judged_after = judge(after, measured)
    n_alternates = len(load_alternates(alternates_path(settings.corpus_dir)))
    taught = {p["item_id"] for p in decided.approved}
    rows = []
    for name, qs in subsets(measured, taught).items():
        for lang in ("all", "zh", "en"):
            part = [q for q in qs if lang == "all" or q.lang == lang]
            if lang != "all" and name != "all measured":
                continue
            rows.append((name, lang, "before", scores(judged_before, part)))
            rows.append((name, lang, "after", scores(judged_after, part)))
    sweep = sweep_discounts(after, measured, discounts) if discounts else []
    timings = time_new_alternate(settings, after, measured, timing_runs) if timing_runs else []
    return {
        "replayed": len(replayed), "measured": len(measured), "turns": traffic.turns,
        "outcomes": dict(sorted(traffic.outcomes.items(), key=lambda kv: -kv[1])),
        "proposals": decided.proposals, "approved": decided.approved, "rejected": decided.rejected,
        "alternates": n_alternates,
        "rows": rows, "sweep": sweep, "timings": timings, "judged_before": judged_before, "judged_after": judged_after,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="which questions of each item are replayed (default 0)")
    ap.add_argument("--share", type=float, default=0.5, help="share of each item's questions replayed (default 0.5)")
    ap.add_argument("--items", type=int, default=0, help="only this many multi-question items (a quick run); 0: all")
    ap.add_argument("--timing-runs", type=int, default=3, help="times a new alternate is added and searched (default 3)")
    ap.add_argument("--policy", choices=POLICIES, default="every",
                    help="reviewer: approve every right pair, or only those with click/rephrase evidence (default every)")
    ap.add_argument("--discounts", default="", help="also measure alternates scored at these discounts, "
                    "comma-separated (e.g. 0,0.01,0.02,0.05,1): how RankingParams.alternate_discount was chosen")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--keep", type=Path, help="work in this new folder and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)
    if not 0 < args.share < 1:
        print(f"simulate_learning: --share {args.share} must lie between 0 and 1, e.g. 0.5", file=sys.stderr)
        return 2
    try:
        discounts = [float(x) for x in args.discounts.split(",") if x.strip()]
    except ValueError:
        print(f"simulate_learning: --discounts {args.discounts!r} must be numbers separated by commas, e.g. 0,0.05",
              file=sys.stderr)
        return 2
    if args.keep and args.keep.exists():
        print(f"simulate_learning: {args.keep} exists; give a new folder to --keep", file=sys.stderr)
        return 2
    questions = load_dev_data()
    if args.items:
        questions = slice_items(questions, args.items, args.seed)
    log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    with contextlib.ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="faqbot-learning-")))
        root.mkdir(parents=True, exist_ok=True)
        result = simulate(copy_workspace(root), questions, args.seed, args.share, args.timing_runs, log,
                          policy=args.policy, discounts=discounts)
    if args.json:
        out = {k: v for k, v in result.items() if not k.startswith("judged")}
        out["rows"] = [{"questions": n, "lang": lang, "when": w, **m.as_dict()} for n, lang, w, m in result["rows"]]
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    print("\nWhat the simulated users did:")
    for outcome, n in result["outcomes"].items():
        print(f"  {n:>4}  {outcome}")
    print(f"\nReview (policy {args.policy}): {len(result['proposals'])} proposals, {len(result['approved'])} approved, "
          f"{len(result['rejected'])} rejected; {result['alternates']} alternate(s) in the copied file\n")
    print(format_table(result["rows"]))
    if result["sweep"]:
        print("\nAlternates scored at other discounts (RankingParams.alternate_discount; chosen on the tune pages):")
        print(f"{'discount':>8}  {'questions':<15} {'n':>4} {'R@1':>6} {'R@3':>6} {'ans.prec':>8} {'hard.ans':>8}")
        for r in result["sweep"]:
            print(f"{r['discount']:>8g}  {r['questions']:<15} {r['n']:>4} {r['r1']:>6.3f} {r['r3']:>6.3f} "
                  f"{_f(r['answer_precision']):>8} {_f(r['hard_asserted']):>8}")
    if result["timings"]:
        print("\nA newly added alternate found, end to end (append + apply_alternates + open index + search):")
        for t in result["timings"]:
            print(f"  {t['total']:.2f} s (append {t['append']:.3f}, apply {t['apply']:.2f}, open {t['open']:.2f}, "
                  f"search {t['search']:.3f}); {t['chars']} characters; found on top: {t['found']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
