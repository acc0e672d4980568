"""The browser chat (Gradio Blocks) and its API endpoints `/ask` (markdown) and `/search` (JSON).

One retriever serves every session: it is loaded once per process and only read here. Retrieval events share
one queue (`concurrency_id="retrieval"`) whose limit is set on purpose, so several people are served at once and
a slow question does not hold up the others; feedback clicks have their own small queue.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

import gradio as gr

from faqbot.answer import DEFAULT_BANDS, Bands, escape_markdown, scrub_text, suggestions
from faqbot.config import Settings
from faqbot.corpus_config import CorpusConfig
from faqbot.conversation import Conversation
from faqbot.feedback import FeedbackStore
from faqbot.service import Answer, FaqService, InputError

log = logging.getLogger(__name__)

# Searches served at once. The retriever is only read; its model call is serialised by its own lock (one
# forward pass uses both cores), the rest (BM25, FAISS, formatting, network) overlaps.
RETRIEVAL_CONCURRENCY = 4
ECHO_LIMIT = 2000  # a long paste is echoed shortened in the user's bubble; the search gets the full text

def intro(config: CorpusConfig) -> str:
    """The chat's heading and its intro paragraphs (English first), from the corpus config."""
    paragraphs = [config.intro[lang] for lang in ("en", "zh") if config.intro.get(lang)]
    paragraphs += [text for lang, text in config.intro.items() if lang not in ("en", "zh") and text]
    return "\n".join([f"## {config.heading}", *paragraphs]) + "\n"


PLACEHOLDER = """\
### 👋 Ask a question · 请提问
Pick an example below or type your own. · 点击下面的示例，或直接输入问题。
"""

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


def _plain(question: str) -> str:
    """A button label: buttons show text as is, so markdown code ticks would show as stray backticks."""
    return question.replace("`", "")


def _refuse(exc: InputError, where: str) -> gr.Error:
    """An input error as the message the client sees; logged as one line, never a traceback."""
    log.info("%s refused: %s", where, exc.message)
    return gr.Error(exc.message, print_exception=False)


def _conversation(state: Any) -> Conversation:
    """The chat's state: a Conversation (a fresh chat may still hold Gradio's initial empty value)."""
    return state if isinstance(state, Conversation) else Conversation()


class FaqChat:
    """The browser chat and the Gradio API over one FaqService: parse Gradio's inputs, call, render."""

    def __init__(self, retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None,
                 health: dict | None = None):
        store = store if store is not None else FeedbackStore.from_settings(settings)
        self.service = FaqService(retriever, settings, store, health)
        self.bands = bands

    @property
    def retriever(self) -> Any:
        return self.service.retriever

    @property
    def store(self) -> Any:
        return self.service.store

    def lookup(self, question: Any, version: Any = "latest", component: Any = None, k: Any = None,
               history: Any = None, where: str = "the chat") -> Answer:
        try:
            return self.service.answer(question, history, k=k, version=version, component=component)
        except InputError as exc:
            raise _refuse(exc, where) from None

    # --- API -----------------------------------------------------------------------------------------------

    def ask(self, question: str, version: str = "latest", component: str = "", history: list[str] | None = None) -> str:
        """Answer a question as markdown: the FAQ entry, confidence, version, component and links. `history`
        (optional): the earlier questions of the conversation, oldest first, for follow-ups such as "那 GPU 版本呢？"."""
        answer = self.lookup(question, version, component, history=history, where="/ask")
        return answer.markdown(self.bands)

    def search(self, question: str, k: int = 5, version: str = "latest", component: str = "",
               history: list[str] | None = None) -> dict:
        """The ranked FAQ entries for a question as JSON (the `faqbot ask --json` object); answers' links are
        limited to safe schemes. `history` (optional): the earlier questions of the conversation, oldest first."""
        try:
            k = self.service.check_k(k, required=True)  # the API's k may not be null
        except InputError as exc:
            raise _refuse(exc, "/search") from None
        return self.lookup(question, version, component, k=k, history=history, where="/search").to_dict()

    # --- chat ----------------------------------------------------------------------------------------------

    def respond(self, message: str, history: list[dict], version: str, component: str, conversation: Any):
        """One chat turn: the user's bubble, the answer bubble with 2–4 clickable follow-up questions."""
        history = list(history or [])
        conversation = _conversation(conversation)
        message = scrub_text(message) if isinstance(message, str) else ""  # echoed too: no lone surrogate
        if not message.strip():
            gr.Info(EMPTY_MESSAGE)
            return "", history, conversation
        answer = self.lookup(message, version, component, history=conversation)
        reply = {
            "role": "assistant",
            "content": answer.markdown(self.bands, list_suggestions=False),
            "options": [{"value": q, "label": _plain(q)} for q in suggestions(answer.result, answer.related)],
        }
        history += [{"role": "user", "content": _echo(message)}, reply]
        return "", history, conversation.then(answer.turn, message=len(history) - 1)

    def respond_to_click(self, history: list[dict], version: str, component: str, conversation: Any,
                         evt: gr.SelectData, request: gr.Request = None):
        """A clicked suggestion or example asks itself; the service decides whether the click is evidence."""
        value = evt.value
        question = value.get("text", "") if isinstance(value, dict) else str(value or "")
        before = _conversation(conversation).last()
        out = self.respond(question, history, version, component, conversation)
        self.service.click(before, out[2].last(), _session(request))
        return out

    def vote(self, conversation: Any, evt: gr.LikeData, request: gr.Request = None) -> None:
        """Queue a thumbs up/down on the answer it is about (never waits on the database)."""
        conversation = _conversation(conversation)
        index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        turn = conversation.at_message(index) if isinstance(index, int) else None
        if turn is None or evt.liked not in (True, False):
            return  # a vote withdrawn, or on a message without an answer
        self.service.vote(turn, evt.liked, _session(request), before=conversation.last(before_message=index))


API_NAMES = ("ask", "search")


def complete_api_call(api: str, data: Any) -> Any:
    """The inputs of a Gradio API call, completed with the defaults of the inputs added since the client was
    written: `/ask` took 3 (question, version, component) and `/search` 4 (question, k, version, component)
    before `history`. Gradio itself wants every input and would refuse such a call with a traceback in the log,
    so a call with too few inputs (or too many) is an InputError (422) saying which inputs to send."""
    if api not in API_NAMES or not isinstance(data, list):
        return data
    params = list(inspect.signature(getattr(FaqChat, api)).parameters.values())[1:]  # after self
    missing = params[len(data):]
    required = sum(p.default is inspect.Parameter.empty for p in params)
    if len(data) < required or len(data) > len(params):
        names = ", ".join(p.name for p in params)
        raise InputError(f"/{api} takes {required} to {len(params)} inputs ({names}), not {len(data)}; send "
                         f'{{"data": ["your question"]}}.', 422)
    if not missing:
        return data
    return [*data, *(p.default for p in missing)]


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def build_blocks(retriever: Any, settings: Settings, *, bands: Bands = DEFAULT_BANDS, store: FeedbackStore | None = None,
                 health: dict | None = None) -> gr.Blocks:
    """The Blocks app (the chat and the Gradio API) around a loaded retriever; `demo.faqbot_chat` is its FaqChat.
    server.build_app adds the REST routes and the request limits around it."""
    _bound_gradio_growth()
    chat = FaqChat(retriever, settings, bands=bands, store=store, health=health)
    chat.store.start()  # connects and migrates off the request path; warns once if feedback cannot be saved
    retrieval = {"concurrency_id": "retrieval", "concurrency_limit": RETRIEVAL_CONCURRENCY}

    # analytics off: Gradio would otherwise call home (telemetry, version check) from every deployment
    config = chat.service.config  # the corpus's title, intro and examples (corpus_config.py)
    with gr.Blocks(title=config.page_title, analytics_enabled=False) as demo:
        gr.Markdown(intro(config), elem_id="intro")
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
            label=config.display_title,
            show_label=False,
            height="68vh",
            min_height=420,
            placeholder=PLACEHOLDER,
            examples=[{"text": q, "display_text": q} for q in config.example_questions()] or None,
            feedback_options=("Like", "Dislike"),
            latex_delimiters=[],  # shell `$VAR`s are not formulas
            sanitize_html=True,
            buttons=["copy"],
        )
        answers = gr.State(Conversation())  # the conversation: its turns and the bubbles that show them
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
        chatbot.clear(Conversation, None, answers, api_visibility="private", queue=False)

        demo.load(None, None, None, js=FOLD_FILTERS_ON_PHONE, api_visibility="private", queue=False)
        gr.api(chat.ask, api_name="ask", **retrieval)
        gr.api(chat.search, api_name="search", **retrieval)

    demo.queue(max_size=64, default_concurrency_limit=RETRIEVAL_CONCURRENCY)
    demo.faqbot_chat = chat
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
