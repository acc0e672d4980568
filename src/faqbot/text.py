"""Language detection and tokenisation shared by indexing and querying.

Queries and FAQ text mix Chinese with identifiers (`parse_error.101`, `ERR_UNSAFE_PORT`); those identifiers
are often the best evidence a user gives, so they are kept whole *and* split into their parts.
"""

from __future__ import annotations

import re
from functools import lru_cache

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_ASCII_RUN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/:+#]*[A-Za-z0-9_+#]|[A-Za-z0-9]")
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_PARTS = re.compile(r"[A-Za-z]+|[0-9]+")

EN_STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from as is are was were be been being do does
    did doing have has had having i me my we our you your he she it its they them their this that these those what
    which who whom whose when where why how can could should would will shall may might must not no yes so than too
    very just also there here about into over under again further once all any both each few more most other some
    such only own same s t don get got use using used please help anyone know want need there's it's i'm""".split()
)
ZH_STOPWORDS = frozenset(
    """的 了 是 吗 呢 吧 啊 呀 么 嘛 我 你 他 她 它 我们 你们 这 那 这个 那个 在 和 与 及 或 就 都 也 还 又 要 会 能 可以 可能 请问 请 一下
    怎么 怎么办 怎样 如何 什么 为什么 为何 哪些 哪个 有没有 是否 有 没有 没 时 时候 时候 出现 一个 问题 情况 该 应该 咋 咋办 啥 咋整 呃 哦 嗯
    ， 。 ？ ！ 、 ： ； “ ” ‘ ’ （ ） 《 》 【 】""".split()
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD. Bad bytes in argv (surrogateescape) or "\\ud800" in
    JSON reach us as lone surrogates, which the tokenizer and UTF-8 output cannot encode."""
    return _SURROGATE.sub("\ufffd", text)


def has_han(text: str) -> bool:
    return bool(_HAN.search(text))


def detect_lang(text: str) -> str:
    """'zh' when Chinese carries the question (Traditional too), else 'en'.

    Identifiers and error strings are Latin in both languages, so a few Han characters among many Latin words
    still count as Chinese when they outnumber half the words.
    """
    han = len(_HAN.findall(text))
    if han == 0:
        return "en"
    words = len(_LATIN_WORD.findall(text))
    return "zh" if han >= max(1, words // 2) else "en"


@lru_cache(maxsize=1)
def _zhconv():
    import zhconv

    return zhconv


def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese, so a Traditional query meets the (Simplified) corpus."""
    if not has_han(text):
        return text
    return _zhconv().convert(text, "zh-cn")


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Lower-cased lexical tokens: whole identifiers plus their parts, jieba search-mode words for Chinese."""
    tokens: list[str] = []
    for m in _ASCII_RUN.finditer(text):
        word = m.group(0).lower()
        if word in EN_STOPWORDS:
            continue
        tokens.append(word)
        parts = _PARTS.findall(word)
        if len(parts) > 1:
            tokens.extend(p for p in parts if p not in EN_STOPWORDS and (len(p) > 1 or p.isdigit()))
    han_runs = _HAN_RUN.findall(text)
    if han_runs:
        jieba = _jieba()
        for run in han_runs:
            tokens.extend(w for w in jieba.cut_for_search(run) if w.strip() and w not in ZH_STOPWORDS)
    return tokens
