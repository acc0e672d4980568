"""Start the faqbot chat in the browser: `python app.py --corpus FOLDER [--host 127.0.0.1] [--port 7860] [--share]`.

Also the Hugging Face Space entry point (README front-matter `app_file: app.py`). The model and the index load
once, here. The first start, with no index yet, builds it from the corpus (progress on stderr), then serves; a
stale or damaged index is refused with its message, never rebuilt here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from a served app

try:
    import faqbot  # noqa: F401
except ImportError:  # a plain checkout (e.g. a Space) that was not `pip install`ed: use src/ directly
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def _port(text: str) -> int:
    """A TCP port number; anything else is an argparse usage error (one line, exit 2), not a traceback."""
    if not (text.strip().isascii() and text.strip().isdigit()):  # int() also takes 1_0 and ١
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give one from 1 to 65535")
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range; give a port from 1 to 65535")
    return port


def main(argv: list[str] | None = None) -> int:
    # Arguments first: a bad one is reported at once, before Gradio (seconds to import) is loaded.
    from faqbot.cli import argv_corpus_config, with_corpus_flag

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=f"Serve the {argv_corpus_config(argv).display_title} chat in the browser.")
    parser.add_argument("--corpus", type=Path, help="folder of FAQ files (default $FAQBOT_CORPUS; the MindSpore FAQ: "
                        "corpus/README.md); its own index is found with no other flag, and built on the first start")
    parser.add_argument("--host", help="address to listen on (default $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for every interface)")
    parser.add_argument("--port", type=_port, help="port, 1-65535 (default $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--share", action="store_true", help="also make a temporary public gradio.live link (needs internet)")
    parser.add_argument("--index", type=Path, help="index folder, built there on the first start (default index/, or $FAQBOT_INDEX)")
    args = parser.parse_args(argv)

    from faqbot.config import SettingsError, settings_from_env
    from faqbot.server import default_host, default_port

    args.host = args.host or default_host()
    try:
        args.port = args.port or default_port()
    except SettingsError as e:
        print(f"faqbot: cannot start the chat: {e}", file=sys.stderr)
        return 2

    from faqbot.alternates import AlternatesError
    from faqbot.calibration import CalibrationError
    from faqbot.embed import ModelError
    from faqbot.index import IndexLoadError
    from faqbot.search import Retriever
    from faqbot.server import build_app, serve

    try:
        settings = settings_from_env().with_(corpus_dir=args.corpus, index_dir=args.index)
        if args.corpus is not None and not args.corpus.is_dir():
            raise SettingsError(f"--corpus {args.corpus} is not a folder; give the folder holding your FAQ files")
    except SettingsError as e:
        print(f"faqbot: cannot start the chat: {e}", file=sys.stderr)
        return 2
    try:  # a missing index is built from the corpus; a stale or damaged one is reported, never rebuilt here
        retriever = Retriever.from_settings(settings, rebuild="missing")
    except (IndexLoadError, ModelError, CalibrationError, AlternatesError) as e:
        # a model id that cannot load is fixed by another id, a missing calibration by a reinstall, a missing
        # corpus by --corpus, not by building an index
        needs_index = isinstance(e, IndexLoadError) and "faqbot index" not in str(e) and "--corpus" not in str(e)
        hint = "\nRun `faqbot index` to build the index, then start the app again." if needs_index else ""
        print(f"faqbot: cannot start the chat: {with_corpus_flag(f'{e}{hint}', args.corpus)}", file=sys.stderr)
        return 2
    demo = build_app(retriever, settings)
    try:
        serve(demo, args.host, args.port, share=args.share)
    except OSError as e:
        print(f"faqbot: cannot listen on {args.host}:{args.port}: {e}\nPick another port with --port.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
