"""What the stored feedback says (read only): the most frequent unanswered questions, the most disliked answers,
and the gap report that groups them by meaning (`faqbot feedback`, `faqbot feedback gaps`).

Each function takes the store (faqbot.feedback.FeedbackStore: its `rows()` and `path`); this module imports no
database code, and FeedbackStore's methods of the same names call it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faqbot.feedback_learning import wording_key
from faqbot.guard import printable


def unanswered(store: Any, limit: int = 10) -> list[dict]:
    """Off-topic questions, most frequent first; the same text in another case or spacing counts as the same."""
    groups = store.rows(
        """SELECT lower(trim(question)), count(*) AS n, max(time) AS last, max(lang), max(id)
           FROM feedback WHERE kind = 'off_topic' AND question <> ''
           GROUP BY lower(trim(question)) ORDER BY n DESC, last DESC LIMIT ?""",
        (limit,),
    )
    out = []
    for _key, n, last, lang, last_id in groups:
        example = store.rows("SELECT question FROM feedback WHERE id = ?", (last_id,))[0][0]
        out.append({"question": printable(example), "count": n, "last": last, "lang": lang and printable(lang)})
    return out


def disliked(store: Any, limit: int = 10) -> list[dict]:
    """Answers with the most thumbs-down, with their thumbs-up and the questions that got them."""
    dislikes = "sum(CASE WHEN vote = -1 THEN 1 ELSE 0 END)"
    groups = store.rows(
        f"""SELECT item_id, {dislikes} AS dislikes, sum(CASE WHEN vote = 1 THEN 1 ELSE 0 END) AS likes,
                   max(time) AS last
            FROM feedback WHERE item_id IS NOT NULL AND kind = 'vote'
            GROUP BY item_id HAVING {dislikes} > 0
            ORDER BY dislikes DESC, likes ASC, last DESC LIMIT ?""",
        (limit,),
    )
    out = []
    for item_id, n_dis, n_like, last in groups:
        questions = store.rows(
            """SELECT question FROM feedback WHERE item_id = ? AND vote = -1 AND kind = 'vote' AND question <> ''
               GROUP BY question ORDER BY max(id) DESC LIMIT 3""",
            (item_id,),
        )
        out.append({"item_id": printable(item_id), "dislikes": int(n_dis), "likes": int(n_like), "last": last,
                    "questions": [printable(q) for (q,) in questions]})
    return out


def report(store: Any, limit: int = 10, titles: dict[str, str] | None = None) -> dict:
    """The `faqbot feedback --json` object; `titles` (item id -> FAQ question) names the disliked answers."""
    worst = disliked(store, limit)
    for row in worst:
        row["title"] = (titles or {}).get(row["item_id"])
    return {"db": str(store.path), "unanswered": unanswered(store, limit), "disliked": worst}


def gap_questions(store: Any) -> list[dict]:
    """Questions the FAQ did not cover and questions whose answer was disliked, with language and time."""
    return [
        {"question": printable(q), "lang": lang, "time": when, "why": "unanswered" if kind == "off_topic" else "disliked"}
        for q, lang, when, kind in store.rows(
            """SELECT question, lang, time, kind FROM feedback WHERE question <> ''
               AND (kind = 'off_topic' OR (kind = 'vote' AND vote = -1)) ORDER BY id"""
        )
    ]


def cluster_gaps(questions: list[dict], vectors: Any, threshold: float = 0.17) -> list[dict]:
    """Group similar questions (average-linkage clustering on cosine distance, cut at `threshold`); the biggest
    groups first, each with its count, up to 3 examples per language and its date range.

    0.17 suits the default model (multilingual-e5-small), whose distances are compressed: a zh/en paraphrase
    pair measured 0.16-0.17, unrelated questions 0.20-0.25."""
    import numpy as np

    if not questions:
        return []
    vectors = np.asarray(vectors, dtype=np.float64)
    if len(questions) == 1:
        labels = np.array([1])
    else:
        from scipy.cluster.hierarchy import fcluster, linkage

        labels = fcluster(linkage(vectors, method="average", metric="cosine"), t=threshold, criterion="distance")
    groups: dict[int, list[dict]] = defaultdict(list)
    for label, q in zip(labels, questions):
        groups[int(label)].append(q)
    clusters = []
    for members in groups.values():
        examples: dict[str, list[str]] = {"zh": [], "en": []}
        seen: set[str] = set()
        for q in sorted(members, key=lambda q: q["time"], reverse=True):
            key = wording_key(q["question"])
            lang = "zh" if q.get("lang") == "zh" else "en"
            if key not in seen and len(examples[lang]) < 3:
                seen.add(key)
                examples[lang].append(q["question"])
        times = sorted(q["time"] for q in members)
        clusters.append({
            "count": len(members),
            "unanswered": sum(q["why"] == "unanswered" for q in members),
            "disliked": sum(q["why"] == "disliked" for q in members),
            "examples": examples,
            "first": times[0][:10],
            "last": times[-1][:10],
        })
    clusters.sort(key=lambda c: (-c["count"], c["last"]), reverse=False)
    return clusters


def format_gaps_markdown(clusters: list[dict], db: str) -> str:
    lines = ["# What the FAQ should add next", "",
             f"Unanswered and disliked questions from `{db}`, grouped by meaning; the biggest groups first.", ""]
    if not clusters:
        lines.append("No unanswered or disliked questions are stored yet.")
    for i, c in enumerate(clusters, 1):
        span = c["first"] if c["first"] == c["last"] else f"{c['first']} – {c['last']}"
        lines += [f"## {i}. {c['count']} question(s), {span}",
                  f"{c['unanswered']} unanswered, {c['disliked']} with a disliked answer.", ""]
        for lang, label in (("zh", "中文"), ("en", "English")):
            for q in c["examples"][lang]:
                lines.append(f"- {label}: {' '.join(q.split())[:200]}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def format_gaps_csv(clusters: list[dict]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["cluster", "count", "unanswered", "disliked", "first", "last", "examples_zh", "examples_en"])
    for i, c in enumerate(clusters, 1):
        writer.writerow([i, c["count"], c["unanswered"], c["disliked"], c["first"], c["last"],
                         " | ".join(c["examples"]["zh"]), " | ".join(c["examples"]["en"])])
    return buf.getvalue()


# ---------------------------------------------------------------- text report


def format_report(report: dict) -> str:
    """The `faqbot feedback` text: what the FAQ lacks, then what it answers badly."""
    lines = [f"Feedback database: {report['db']}", "", "Most frequent unanswered questions:"]
    if report["unanswered"]:
        for row in report["unanswered"]:
            question = " ".join(row["question"].split())
            if len(question) > 100:
                question = question[:99] + "…"
            lines.append(f"  {row['count']:>4}×  {question}")
    else:
        lines.append("  (none yet)")
    lines += ["", "Most disliked answers:"]
    if report["disliked"]:
        for row in report["disliked"]:
            lines.append(f"  {row['dislikes']:>4}👎 {row['likes']:>3}👍  {row['item_id']}")
            if row.get("title"):
                lines.append(f"           answer:   {' '.join(row['title'].split())[:100]}")
            for q in row["questions"]:
                lines.append(f"           asked as: {' '.join(q.split())[:100]}")
    else:
        lines.append("  (none yet)")
    return "\n".join(lines)
