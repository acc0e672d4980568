"""`faqbot` command line. Each subcommand is a pair: `_add_<name>(subparsers)` declares it,
`_cmd_<name>(args) -> int` runs it; add a new one by writing the pair and listing it in `_SUBCOMMANDS`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from faqbot.config import Settings, settings_from_env
from faqbot.schema import Corpus


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then explicit command-line options on top."""
    settings = settings_from_env()
    return settings.with_(corpus_dir=getattr(args, "corpus", None))


def _print_problems(corpus: Corpus) -> None:
    for p in corpus.problems:
        print(f"faqbot: {p.message}", file=sys.stderr)


# ---------------------------------------------------------------- stats


def corpus_stats(corpus: Corpus) -> dict:
    """Figures about a parsed corpus (the `faqbot stats --json` contract)."""
    from faqbot.corpus import pair_report

    report = pair_report(corpus)
    return {
        "corpus": corpus.root,
        "files": len(corpus.files),
        "entries": len(corpus.entries),
        "items": len(corpus.items),
        "bilingual_items": sum(1 for i in corpus.items if i.bilingual),
        "entries_without_url": sum(1 for e in corpus.entries if not e.url or not e.source_url),
        "by_version": dict(sorted(Counter(e.version for e in corpus.entries).items())),
        "by_component": dict(sorted(Counter(e.component for e in corpus.entries).items())),
        "by_lang": dict(sorted(Counter(e.lang for e in corpus.entries).items())),
        "pages": report,
        "unpaired": {
            page: {"zh": r["unpaired_zh"], "en": r["unpaired_en"]}
            for page, r in report.items()
            if r["unpaired_zh"] or r["unpaired_en"]
        },
        "problems": [{"path": p.path, "message": p.message} for p in corpus.problems],
    }


def _add_stats(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="parse the corpus and print what was found")
    p.add_argument("--corpus", type=Path, help="folder of FAQ pages (default: bundled corpus/, or $FAQBOT_CORPUS)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _cmd_stats(args: argparse.Namespace) -> int:
    from faqbot.corpus import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.corpus_dir)
    _print_problems(corpus)
    stats = corpus_stats(corpus)
    if args.json:
        print(json.dumps(stats, ensure_ascii=False, indent=2))
    else:
        _print_stats_table(stats)
    return 0 if corpus.entries else 1


def _print_stats_table(stats: dict) -> None:
    print(f"corpus: {stats['corpus']}")
    for key in ("files", "entries", "items", "bilingual_items", "entries_without_url"):
        print(f"  {key:<22}{stats[key]:>6}")
    for key in ("by_version", "by_lang", "by_component"):
        print(f"  {key}:")
        for name, n in stats[key].items():
            print(f"    {name:<20}{n:>6}")
    if stats["pages"]:
        print("  pages (zh / en / paired):")
        width = max(len(p) for p in stats["pages"])
        for page, r in stats["pages"].items():
            print(f"    {page:<{width}}  {r['zh']:>4} {r['en']:>4} {r['paired']:>4}")
    for page, langs in stats["unpaired"].items():
        for lang, questions in langs.items():
            for q in questions:
                print(f"  unpaired {lang}: {page}: {q}")
    for p in stats["problems"]:
        print(f"  problem: {p['message']}")


# ---------------------------------------------------------------- main

_SUBCOMMANDS = {
    "stats": (_add_stats, _cmd_stats),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faqbot", description="Bilingual (zh/en) FAQ bot for the MindSpore docs.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in _SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    _, run = _SUBCOMMANDS[args.command]
    try:
        return run(args)
    except KeyboardInterrupt:
        print("faqbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` & co.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        return 0


if __name__ == "__main__":
    sys.exit(main())
