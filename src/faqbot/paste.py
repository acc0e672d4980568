"""The signal in a long paste: the error a user hit, not the environment they describe.

Real questions often arrive as an issue body: version and OS lines, a path or two, a traceback, and one sentence of
their own. Read as one blob, the environment chatter and stack frames outvote the error. Here a paste is split into
the user's own words, the error lines (exception types, error codes, quoted messages, library names) and the noise
(environment lines, stack frames, code), so the ranking can match the error against the entries' own error strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from faqbot.corpus_config import bundled_products

PASTE_MIN_CHARS = 160  # shorter input is a question, read as it is
MAX_PROSE_CHARS = 300
MAX_ERROR_CHARS = 400

_FRAME = re.compile(r'^\s*(File ".*", line \d+|at [\w.$<>]+\(|\[?\d+\]?\s*/.*\.(py|cc|cpp|h)[:(]\d+|#\d+\s+0x[0-9a-f]+)', re.I)
# the bundled corpora's product names (corpora/*.toml `products`): "<product>: 2.3", "<product>.nn.Cell"
_PRODUCTS = "|".join(re.escape(p) for p in bundled_products())
_PRODUCT_KEYS = "".join(f"{re.escape(p)}|{re.escape(p)} version|" for p in bundled_products())
_ENV_KEY = re.compile(
    r"^\s*[-*>#|]*\s*(\*\*)?\s*("
    r"os|system|platform|python|" + _PRODUCT_KEYS + r"cuda|cudnn|cann|gcc|cmake|driver|firmware|hardware|"
    r"device|gpu|cpu|npu|ascend|kernel|ubuntu|centos|euleros|debian|windows|macos|pip|conda|numpy|version|"
    r"environment|env|install(ed)? (via|by|with|from)|硬件|硬件环境|软件环境|环境|版本|操作系统|系统|驱动|芯片|安装方式"
    r")\b[^:：=]{0,24}[:：=]",
    re.I,
)
_VERSION = re.compile(r"\d+\.\d+")


def _env_only(line: str) -> bool:
    """A line of versions and names ("Ubuntu 18.04 x86_64, gcc 7.3.0, CUDA 10.1"), not a sentence about them."""
    return len(_VERSION.findall(line)) >= 2 and len(line.split()) <= 14
_HEADING = re.compile(r"^\s*(\*\*|#+\s*)?(environment|env|环境|版本信息|系统信息|log|日志|traceback|error log|报错信息)\W*$", re.I)
_CODE = re.compile(r"^\s*(import |from \w+ import |def |class |return |for |if |[\w.\[\]]+\s*=\s*[\w.]+\(|print\(|>>>|\$ |#include)")
_ERROR_WORD = re.compile(
    r"(\b\w*(Error|Exception|Warning|Fault|Abort(ed)?)\b|\berror\b|\bERROR\b|\bfail(ed|ure)?\b|\bnot found\b|"
    r"\bcannot\b|\bcan't\b|\bunable\b|\bundefined\b|\binvalid\b|\bunsupported\b|\bnot supported\b|\bsegmentation\b|"
    r"\bcore dumped\b|\btimeout\b|\bkilled\b|\bE\d{4,6}\b|\b[A-Z]{2,}\d{3,}\b|\blib[\w+-]{1,80}\.so[.\d]*|"
    r"报错|错误|失败|异常|无法|找不到|不支持|超时)",
)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-@~+]+){2,}[\\/]?")  # /home/me/proj/train.py: the user's own names
_TERMS = re.compile(
    r"\b\w*(?:Error|Exception)\b|\bE\d{4,6}\b|\b[A-Z]{2,}\d{3,}\b|\blib[\w+-]{1,80}\.so(?:\.\d+)*|"
    r"\b(?:" + (_PRODUCTS + "|" if _PRODUCTS else "") + r"ms|nn|ops|context|dataset)\.[\w.]+"
)
# boilerplate a run prints on its way: library warnings, progress bars. Discounted when a real error is there too.
_BOILERPLATE = re.compile(
    r"\b(User|Deprecation|Future|Runtime|Resource|Pending)Warning\b|smallest subnormal|warnings\.warn|"
    r"\d+%\|[^|]{0,80}\||\bit/s\]|\[W(ARNING)?\]|^\s*W\d{4}|\bWARNING\b", re.I)
# the exception that ended the run: "XxxError: message", "RuntimeError：...", "ERROR: ...", "报错：..."
_CAUSE = re.compile(r"(?:(?<![\w.])[\w.]{0,120}(?:Error|Exception|Fault)\b|\bERROR\b\]?|报错[^：:，,。]{0,12}|错误)\s*[:：]\s*(?:\S.{0,200})|"
                    r"No module named \S+|(?<![\w.+-])[\w.+-]{1,120}\.so(?:\.\d+)*: cannot open shared object file|"
                    r"(?:Load|loading) [\w ]{0,20}(?:library|model)\W.{0,80}?failed\S*", re.S | re.I)
# log noise: timestamps, pids, thread ids, addresses, host:pid:tid prefixes, fences, markdown emphasis
# (each run is tried from its start only, and library names are bounded: either could rescan a long line from
# every position, which is quadratic in the line's length)
_NOISE = re.compile(r"(?<!\S)\S*\d[\d:.\-,()x_]{7,}\S*|\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{12,}\b|`{3,}\w*|\*\*|^\s*[-*>]\s+")


@dataclass(frozen=True)
class PasteSignal:
    """What the ranking reads from one input."""

    dense_text: str  # what the embedding model reads
    lexical_text: str  # what BM25 reads
    segments: tuple[str, ...] = ()  # the error lines of a long paste (empty for an ordinary question)
    terms: tuple[str, ...] = ()  # error identifiers: exception types, codes, library and API names
    cause: str = ""  # the causal error: the last exception line that is not boilerplate ('' when none)

    @property
    def is_paste(self) -> bool:
        return bool(self.segments)

    @property
    def segments_text(self) -> str:
        return _clip(" ".join(self.segments), MAX_ERROR_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]


def _kind(line: str) -> str:
    if not line.strip():
        return "blank"
    if _FRAME.search(line):
        return "frame"
    if _BOILERPLATE.search(line) and not _CAUSE.search(_BOILERPLATE.sub(" ", line)):
        return "boilerplate"
    if _ERROR_WORD.search(line):
        return "error"
    if _ENV_KEY.search(line) or _env_only(line) or _HEADING.match(line):
        return "env"
    if _CODE.search(line):
        return "code"
    return "prose"


def error_terms(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.group(0) for m in _TERMS.finditer(text)))


def causal_error(lines: list[str]) -> str:
    """The last exception line that is not a library warning; a warning only when nothing else failed."""
    found = [m.group(0).strip() for line in lines for m in _CAUSE.finditer(line)]
    real = [c for c in found if not _BOILERPLATE.search(c)]
    return _clip((real or found or [""])[-1], MAX_PROSE_CHARS)


def _split_lines(text: str) -> list[str]:
    # a one-line paste is read whole: cutting it at sentence and exception breaks (_ONE_LINE_BREAKS) left R@1 on the
    # tuning splits unchanged (docs/retrieval.md, "Real users' questions"); only its causal error is looked for
    return text.splitlines() if "\n" in text else [text]


def paste_signal(text: str) -> PasteSignal:
    """Split a paste into the user's words and the error; an ordinary question passes through untouched."""
    lines = _split_lines(text)
    if len(text) < PASTE_MIN_CHARS or (len(lines) < 3 and not _FRAME.search(text)):
        return PasteSignal(text, text, (), error_terms(text), causal_error(lines))
    prose, errors, warnings = [], [], []
    for line in lines:
        kind = _kind(line)
        clean = " ".join(_NOISE.sub(" ", _PATH.sub(" ", line)).split())
        if kind == "prose" and clean:
            prose.append(clean)
        elif kind == "error" and clean:
            errors.append(clean)
        elif kind == "boilerplate" and clean:
            warnings.append(clean)
    errors = list(dict.fromkeys(errors)) or list(dict.fromkeys(warnings))  # a warning counts when it is all there is
    cause = causal_error(errors or lines)
    if not errors:
        kept = " ".join(prose) or text
        return PasteSignal(_clip(kept, MAX_PROSE_CHARS + MAX_ERROR_CHARS), kept, (), error_terms(text), cause)
    # the last error lines are the exception that ended the run; the first is often the user's summary
    picked = errors[-3:] if len(errors) > 3 else errors
    if errors[0] not in picked:
        picked = [errors[0], *picked]
    if cause and not any(cause in p for p in picked):
        picked = [*picked[1:], cause] if len(picked) > 3 else [*picked, cause]
    own = _clip(" ".join(prose), MAX_PROSE_CHARS)
    dense_text = " ".join(x for x in (own, _clip(" ".join(picked), MAX_ERROR_CHARS)) if x)
    lexical_text = " ".join([*prose, *errors])
    return PasteSignal(dense_text, lexical_text, tuple(picked), error_terms(" ".join(errors)), cause)
