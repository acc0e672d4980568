"""The browser chat (Gradio Blocks) and its API endpoints `/ask` (markdown) and `/search` (JSON).

One retriever serves every session: it is loaded once per process and only read here. Retrieval events share
one queue (`concurrency_id="retrieval"`) whose limit is set on purpose, so several people are served at once and
a slow question does not hold up the others; feedback clicks have their own small queue.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from faqbot.answer import DEFAULT_BANDS, Bands, escape_markdown, render_markdown, safe_markdown, scrub_text, suggestions
from faqbot.config import NUMERIC_RANGES, Settings, SettingsError, check_number
from faqbot.conversation import HistoryError, clean_history, search_in_context
from faqbot.feedback import DISLIKE, LIKE, OFF_TOPIC, FeedbackStore, wording_key
from faqbot.guard import HostGuard
from faqbot.reload import IndexWatcher
from faqbot.schema import Hit, SearchResult
from faqbot.rest import RestApi, lifespan_with_pruning

log = logging.getLogger(__name__)

# Searches served at once. The retriever is only read; its model call is serialised by its own lock (one
# forward pass uses both cores), the rest (BM25, FAISS, formatting, network) overlaps.
RETRIEVAL_CONCURRENCY = 4
ECHO_LIMIT = 2000  # a long paste is echoed shortened in the user's bubble; the search gets the full text
RELATED_K = 3

INTRO = """\
## MindSpore FAQ bot · MindSpore 常见问题助手
Ask about installing, training, debugging or deploying MindSpore, in **English or Chinese**: the answer comes
from the official MindSpore FAQ, with its source and how sure the bot is.
用**中文或英文**提问 MindSpore 的安装、训练、调试、部署等问题，答案来自 MindSpore 官方 FAQ，并附出处和置信度。
"""

PLACEHOLDER = """\
### 👋 Ask a question · 请提问
Pick an example below or type your own. · 点击下面的示例，或直接输入问题。
"""

EXAMPLES = [  # each lands on a good answer (checked on the shipped index)
    "MindSpore 支持 Windows 吗？",
    "Which Python version does MindSpore need?",
    "怎么把数据集的两列合并成一列？",
    "How can I merge two dataset columns into one?",
]

def privacy_notice(log_questions: bool) -> str:
    """The short notice under the input: what is stored, and that personal data is masked."""
    if log_questions:
        return ("<small>Questions and 👍/👎 may be stored to improve the FAQ (e-mails, phone numbers and keys are "
                "masked). · 提问和 👍/👎 可能会被保存以改进 FAQ（邮箱、电话、密钥会被遮盖）。</small>")
    return "<small>Only 👍/👎 are stored, without your question. · 仅保存 👍/👎，不保存提问内容。</small>"


EMPTY_MESSAGE = "请输入问题 · Please type a question first."

CSS = """
.gradio-container { max-width: 1100px !important; margin: 0 auto !important; }
#faq-chat .message-wrap h3 { margin-top: 0.2em; font-size: 1.15em; }
/* follow-up questions: a left-aligned list of chips under the answer, not a grid of cards */
#faq-chat .options { display: flex !important; flex-direction: column; align-items: flex-start; gap: 6px !important;
  margin-left: 0 !important; max-width: 100% !important; padding: 4px 8px 12px !important; }
#faq-chat .options .option { width: auto !important; max-width: 100% !important; align-items: flex-start !important;
  text-align: left; padding: 6px 14px !important; border-style: solid !important; border-radius: 999px !important;
  font-size: var(--text-sm); }
/* Phones (a shared demo link is often opened on one): the conversation first. The intro keeps only its title,
   the filters fold into one "Filters · 筛选" row (folded by FOLD_FILTERS_ON_PHONE), the input stays in view. */
@media (max-width: 640px) {
  .gradio-container { padding: 6px 8px !important; }
  #intro p { display: none; }
  #intro h2 { font-size: 1.05em; margin: 0 !important; }
  /* what is not the chat (title, filters row, input, privacy note, footer) takes ~330 px: the page fits the
     screen, so a new answer never scrolls the filters or the input away */
  #faq-chat { height: calc(100dvh - 340px) !important; min-height: 240px !important; }
  #privacy-notice, #privacy-notice * { font-size: 11px !important; line-height: 1.3 !important; }
}
/* Wider screens: the filters stay open as before, without a fold control. */
@media (min-width: 641px) {
  #filters > .label-wrap { display: none !important; }
  #filters [data-testid="accordion-content"] { display: block !important; }
}
"""

# Runs once on page load: on a phone-sized screen, fold the filters (open by default, so wide screens and the
# API see them as before). The accordion only mounts its content once opened, hence open first, fold after.
FOLD_FILTERS_ON_PHONE = """
() => {
  if (!window.matchMedia("(max-width: 640px)").matches) return;
  const label = document.querySelector("#filters > .label-wrap");
  const content = document.querySelector("#filters [data-testid='accordion-content']");
  if (label && (!content || content.style.display !== "none")) label.click();
}
"""

# System fonts only: the default theme fonts would make every visitor's browser call Google Fonts.
THEME = gr.themes.Soft(
    primary_hue="teal",
    secondary_hue="sky",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
)


def version_choices(versions: list[str]) -> list[tuple[str, str]]:
    return [("Newest · 最新", "latest")] + [(v, v) for v in versions if v != "latest"] + [("All · 全部", "all")]


def component_choices(components: list[str]) -> list[tuple[str, str]]:
    return [("All components · 全部组件", "")] + [(c, c) for c in components]


def _echo(text: str) -> str:
    """The user's message as typed (escaped: `<script>` shows as text, not as an empty bubble)."""
    if len(text) > ECHO_LIMIT:
        rest = len(text) - ECHO_LIMIT
        return escape_markdown(text[:ECHO_LIMIT]) + f"\n\n*… (+{rest:,} characters / 字符)*"
    return escape_markdown(text)


def _api_question(question: Any) -> str:
    """The API's question as text; a wrong type is refused with a message the client sees (never a traceback)."""
    if not isinstance(question, str):
        raise gr.Error(f"question must be a string, not {type(question).__name__}.")
    return scrub_text(question)


def _api_k(k: Any) -> int:
    """`k` as a whole number from 1 to 50 ("3" and 3.0 accepted); anything else is refused with a message."""
    low, high = NUMERIC_RANGES["k"]
    if isinstance(k, str):
        k = k.strip()
    try:
        return check_number("k", k, low, high, integer=True)
    except SettingsError:
        raise gr.Error(f"k must be a whole number from {low:g} to {high:g}, not {str(k)[:40]!r}.") from None


def _plain(question: str) -> str:
    """A button label: buttons show text as is, so markdown code ticks would show as stray backticks."""
    return question.replace("`", "")


class FaqChat:
    """Everything the UI and the API do, with the retriever and the feedback store they share."""

    def __init__(self, retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None):
        self.retriever = retriever
        self.settings = settings
        self.bands = bands
        self.store = store if store is not None else FeedbackStore.from_settings(settings)
        self.versions = ["latest", *[v for v in retriever.versions if v != "latest"], "all"]
        self.components = list(retriever.components)

    # --- retrieval -----------------------------------------------------------------------------------------

    def _check_filters(self, version: str | None, component: str | None) -> tuple[str, str | None]:
        for name, value in (("version", version), ("component", component)):
            if value is not None and not isinstance(value, str):
                raise gr.Error(f"{name} must be a string or empty, not {type(value).__name__}.")
        version = version or "latest"
        if version not in self.versions:
            raise gr.Error(f"Unknown version {version!r}: use one of {', '.join(self.versions)}.")
        component = component or None
        if component is not None and component not in self.components:
            raise gr.Error(f"Unknown component {component!r}: use one of {', '.join(self.components)}, or leave it empty.")
        return version, component

    def lookup(self, question: str, version: str | None = "latest", component: str | None = None, k: int | None = None,
               history: list[str] | None = None) -> tuple[SearchResult, list[Hit]]:
        """The search result and, for an answered question, its related entries. `history`: the earlier user
        questions of this conversation, oldest first, so a follow-up is understood (conversation.py)."""
        version, component = self._check_filters(version, component)
        question = scrub_text(question)  # lone surrogates (JSON "\ud800") would break the tokenizer
        try:
            history = [scrub_text(h) for h in clean_history(history)]
        except HistoryError as exc:
            raise gr.Error(f"{exc}.") from None
        result = search_in_context(self.retriever, question, history, k=k or self.settings.k, version=version,
                                   component=component)
        related: list[Hit] = []
        if result.in_scope and result.hits:
            related = list(self.retriever.related(result.hits[0].item.id, result.lang, k=RELATED_K,
                                                  version=version, component=component))
        return result, related

    def _log_off_topic(self, result: SearchResult) -> None:
        if result.in_scope or not result.query.strip():
            return
        top = result.hits[0] if result.hits else None
        try:
            self.store.record(
                result.query,
                OFF_TOPIC,
                item_id=top.item.id if top else None,
                score=result.confidence if top else None,
                lang=result.lang,
                in_scope=False,
            )
        except Exception as e:  # feedback must never break an answer
            log.warning("could not log an off-topic question to %s: %s", self.store.path, e)

    # --- API -----------------------------------------------------------------------------------------------

    def ask(self, question: str, version: str = "latest", component: str = "", history: list[str] | None = None) -> str:
        """Answer a question as markdown: the FAQ entry, confidence, version, component and links. `history`
        (optional): the earlier questions of the conversation, oldest first, for follow-ups such as "那 GPU 版本呢？"."""
        result, related = self.lookup(_api_question(question), version, component, history=history)
        self._log_off_topic(result)
        return render_markdown(result, self.bands, related)

    def search(self, question: str, k: int = 5, version: str = "latest", component: str = "",
               history: list[str] | None = None) -> dict:
        """The ranked FAQ entries for a question as JSON (the `faqbot ask --json` object); answers' links are
        limited to safe schemes. `history` (optional): the earlier questions of the conversation, oldest first."""
        question, k = _api_question(question), _api_k(k)
        result, _ = self.lookup(question, version, component, k=k, history=history)
        out = result.to_dict()
        for answer in out["answers"]:
            answer["answer"] = safe_markdown(answer["answer"])  # as the chat shows it: raw HTML as text
        return out

    # --- chat ----------------------------------------------------------------------------------------------

    def respond(self, message: str, history: list[dict], version: str, component: str, answers: dict):
        """One chat turn: the user's bubble, the answer bubble with 2–4 clickable follow-up questions."""
        history = list(history or [])
        answers = dict(answers or {})
        message = scrub_text(message) if isinstance(message, str) else ""  # echoed too: no lone surrogate
        if not message.strip():
            gr.Info(EMPTY_MESSAGE)
            return "", history, answers
        result, related = self.lookup(message, version, component, history=_asked(answers))
        self._log_off_topic(result)
        reply = {
            "role": "assistant",
            "content": render_markdown(result, self.bands, related, list_suggestions=False),
            "options": [{"value": q, "label": _plain(q)} for q in suggestions(result, related)],
        }
        history += [{"role": "user", "content": _echo(message)}, reply]
        top = result.hits[0] if result.hits else None
        answers[len(history) - 1] = {
            "question": result.query,
            "item_id": top.item.id if top else None,
            "score": result.confidence if top else None,
            "lang": result.lang,
            "in_scope": result.in_scope,
            "level": result.match,
        }
        return "", history, answers

    def respond_to_click(self, history: list[dict], version: str, component: str, answers: dict, evt: gr.SelectData,
                         request: gr.Request = None):
        """A clicked suggestion or example asks itself. A suggestion clicked right after a "not covered" or
        related-only reply is evidence that the user's earlier wording meant the clicked entry."""
        value = evt.value
        question = value.get("text", "") if isinstance(value, dict) else str(value or "")
        before = _last_answer(answers)
        out = self.respond(question, history, version, component, answers)
        after = _last_answer(out[2])
        if before and after and after is not before and after["in_scope"] and after["item_id"] and _unresolved(before):
            self.store.record(before["question"], LIKE, kind="click", item_id=after["item_id"], lang=before["lang"],
                              in_scope=False, session=_session(request))
        return out

    def vote(self, answers: dict, evt: gr.LikeData, request: gr.Request = None) -> None:
        """Queue a thumbs up/down with the question and answer it is about (never waits on the database). A liked
        answer right after a "not covered" reply also records the earlier wording as a rephrasing of it."""
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        meta = (answers or {}).get(index) or (answers or {}).get(str(index))
        if meta is None or evt.liked not in (True, False):
            return  # a vote withdrawn, or on a message without an answer
        session = _session(request)
        self.store.record(
            meta["question"],
            LIKE if evt.liked else DISLIKE,
            item_id=meta["item_id"],
            score=meta["score"],
            lang=meta["lang"],
            in_scope=meta["in_scope"],
            session=session,
        )
        before = _last_answer(answers, before=int(index))
        if evt.liked and meta["item_id"] and meta["in_scope"] and before and _unresolved(before) \
                and wording_key(before["question"]) != wording_key(meta["question"]):
            self.store.record(before["question"], LIKE, kind="rephrase", item_id=meta["item_id"], lang=before["lang"],
                              in_scope=False, session=session)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _last_answer(answers: dict | None, before: int | None = None) -> dict | None:
    """The metadata of the latest answer in this chat (before message `before`, when given)."""
    keys = [int(k) for k in (answers or {}) if str(k).isdigit() and (before is None or int(k) < before)]
    return (answers or {}).get(max(keys)) or (answers or {}).get(str(max(keys))) if keys else None


def _asked(answers: dict | None) -> list[str]:
    """The user's earlier questions in this chat, oldest first: the history a follow-up is answered with."""
    keys = sorted(int(k) for k in (answers or {}) if str(k).isdigit())
    metas = [(answers or {}).get(k) or (answers or {}).get(str(k)) for k in keys]
    return [m["question"] for m in metas if m and (m.get("question") or "").strip()]


def _unresolved(meta: dict) -> bool:
    """A reply that did not settle the question: "not covered", or related entries only."""
    return bool((meta.get("question") or "").strip()) and (not meta.get("in_scope") or meta.get("level") == "related")


def build_app(retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None) -> gr.Blocks:
    """The Blocks app around a loaded retriever. Start it with `launch()` (or `demo.launch(**launch_options(demo))`),
    which also serves the plain REST routes of rest.py on the same port."""
    _bound_gradio_growth()
    chat = FaqChat(retriever, settings, bands=bands, store=store)
    chat.store.start()  # connects and migrates off the request path; warns once if feedback cannot be saved
    retrieval = {"concurrency_id": "retrieval", "concurrency_limit": RETRIEVAL_CONCURRENCY}

    # analytics off: Gradio would otherwise call home (telemetry, version check) from every deployment
    with gr.Blocks(title="MindSpore FAQ bot", analytics_enabled=False) as demo:
        gr.Markdown(INTRO, elem_id="intro")
        with gr.Accordion("Filters · 筛选", open=True, elem_id="filters"), gr.Row(equal_height=True):
            version = gr.Radio(
                version_choices(list(retriever.versions)),
                value="latest",
                label="Docs version · 文档版本",
                elem_id="version-filter",
                scale=3,
            )
            component = gr.Dropdown(
                component_choices(list(retriever.components)),
                value="",
                label="Component · 组件",
                elem_id="component-filter",
                scale=2,
            )
        chatbot = gr.Chatbot(
            elem_id="faq-chat",
            label="MindSpore FAQ",
            show_label=False,
            height="68vh",
            min_height=420,
            placeholder=PLACEHOLDER,
            examples=[{"text": q, "display_text": q} for q in EXAMPLES],
            feedback_options=("Like", "Dislike"),
            latex_delimiters=[],  # shell `$VAR`s are not formulas
            sanitize_html=True,
            buttons=["copy"],
        )
        answers = gr.State({})
        with gr.Row():
            question = gr.Textbox(
                placeholder="Type a question · 输入问题（中文或英文）",
                show_label=False,
                lines=1,
                max_lines=6,
                autofocus=True,
                submit_btn="Ask · 提问",
                elem_id="question",
                scale=8,
            )

        gr.Markdown(privacy_notice(settings.log_questions), elem_id="privacy-notice")

        ui = {"api_visibility": "private", **retrieval}
        question.submit(chat.respond, [question, chatbot, version, component, answers], [question, chatbot, answers], **ui)
        chatbot.option_select(chat.respond_to_click, [chatbot, version, component, answers], [question, chatbot, answers], **ui)
        chatbot.example_select(chat.respond_to_click, [chatbot, version, component, answers], [question, chatbot, answers], **ui)
        chatbot.like(chat.vote, [answers], None, api_visibility="private", concurrency_id="feedback", concurrency_limit=2)
        chatbot.clear(lambda: {}, None, answers, api_visibility="private", queue=False)

        demo.load(None, None, None, js=FOLD_FILTERS_ON_PHONE, api_visibility="private", queue=False)
        gr.api(chat.ask, api_name="ask", **retrieval)
        gr.api(chat.search, api_name="search", **retrieval)

    demo.queue(max_size=64, default_concurrency_limit=RETRIEVAL_CONCURRENCY)
    demo.faqbot_rest = RestApi(chat, workers=getattr(retriever.embedder, "instances", 1), health=_index_health(settings))
    # an approved alternate (or a rebuilt index) is served within seconds, without a restart (reload.py)
    demo.faqbot_watcher = IndexWatcher(settings, chat, demo.faqbot_rest.health, settings.reload_seconds).start()
    return demo


# Gradio keeps per-session state for this many sessions (its default is 10,000, about 33 KB each: 330 MB). Every
# plain-HTTP API call opens a session, so under load the oldest browser session's state (its answers' feedback
# metadata) is dropped after this many newer sessions; programs should use /api/search, which opens none.
STATE_SESSION_CAPACITY = 2000
# Gradio 6.31 rebuilds a pandas summary of its last GRADIO_ANALYTICS_MAX_EVENTS events after every event (even
# with analytics off): 10,000 by default, which made each request slower as they accumulated (87 -> 42 req/s in
# three minutes). Both are Gradio's own settings; an explicit environment value wins.
GRADIO_GROWTH_SETTINGS = {"GRADIO_ANALYTICS_MAX_EVENTS": "500", "GRADIO_ANALYTICS_CACHE_FREQUENCY": "50"}


def _bound_gradio_growth() -> None:
    """Gradio reads these when its queue is created (in `gr.Blocks` and `queue()`), so before building."""
    for key, value in GRADIO_GROWTH_SETTINGS.items():
        os.environ.setdefault(key, value)


def _index_health(settings: Settings) -> dict:
    """Checked once when the app is built (it hashes the corpus pages); /healthz reports it."""
    try:
        from faqbot.index import index_status

        ok, message = index_status(settings.model_index_dir, settings.model, settings.corpus_dir)
    except Exception as exc:  # noqa: BLE001 - a health check must not stop the app
        return {"index_ok": True, "index_message": f"not checked ({type(exc).__name__}: {exc})"}
    return {"index_ok": bool(ok), "index_message": message}


def launch_options(demo: gr.Blocks | None = None) -> dict:
    """What `launch()` needs besides host and port: look and feel (Gradio 6 moved theme and css there), the
    session-state bound, and, given the app from `build_app`, the REST routes and the lifespan that prunes
    finished sessions, passed to Gradio's FastAPI app as it is created (so they exist from the first request)."""
    options = {"theme": THEME, "css": CSS, "footer_links": ["api"], "state_session_capacity": STATE_SESSION_CAPACITY}
    rest = getattr(demo, "faqbot_rest", None)
    if rest is not None:
        options["app_kwargs"] = {"routes": rest.routes(), "lifespan": lifespan_with_pruning(demo),
                                 "middleware": [Middleware(HostGuard, allowed_hosts=rest.chat.settings.allowed_hosts)]}
    return options


def launch(demo: gr.Blocks, host: str, port: int, share: bool = False, quiet: bool = False) -> None:
    """Start serving in background threads: the chat, its Gradio API, `/api/search` and `/healthz`."""
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=quiet,
                **launch_options(demo))


def serve(demo: gr.Blocks, host: str, port: int, share: bool = False) -> None:
    """Serve until interrupted. A share link that cannot be made is reported; the app keeps serving locally."""
    launch(demo, host, port, share=share)
    if share and not demo.share_url:
        print(
            "\nfaqbot: no public share link: Gradio could not reach its share server (this machine is offline or "
            f"the frpc tunnel binary is missing). The chat is still served locally at {demo.local_url} ; "
            "run without --share, or deploy as a Hugging Face Space (see README).",
            flush=True,
        )
    demo.block_thread()


def default_host() -> str:
    """Hugging Face Spaces (and Docker setups) pass the address through Gradio's own variables."""
    return os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")


def default_port() -> int:
    """$GRADIO_SERVER_PORT (plain digits, 1-65535) or 7860; anything else is a SettingsError in one line."""
    text = os.environ.get("GRADIO_SERVER_PORT", "").strip() or "7860"
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise SettingsError(f"GRADIO_SERVER_PORT={text[:40]!r} is not a port number; give one from 1 to 65535, "
                            "or pass --port")
    return int(text)
