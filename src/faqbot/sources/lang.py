"""The language of an entry from its own text: the share of Han characters (Simplified or Traditional).

A folder or file name (`zh/`, `faq.zh-CN.md`) is only a hint, used when the text says nothing (all code,
no letters): teams mislabel folders, copy pages across, and write English questions in Chinese FAQs.
"""

from __future__ import annotations

import re

# CJK Unified Ideographs (Simplified and Traditional alike), Extension A, and the compatibility block
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z]+")
_CODE_BLOCK = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.S | re.M)
_NOISE = re.compile(r"`[^`\n]*`|https?://\S+|<[^>\n]+>|\]\([^)\s]*\)")

# A Han character carries about as much as an English word; a Chinese FAQ text keeps English names and
# identifiers, so a text counts as Chinese once Han characters are a third of (Han characters + words).
ZH_SHARE = 1 / 3

_HINTS = {"zh": "zh", "zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh", "zh-tw": "zh", "zh-hant": "zh", "cn": "zh",
          "chs": "zh", "cht": "zh", "en": "en", "en-us": "en", "en_us": "en", "en-gb": "en", "english": "en",
          "chinese": "zh"}


def han_share(text: str) -> float | None:
    """Han characters / (Han characters + Latin words) in prose (code and links removed); None: no letters."""
    prose = _NOISE.sub(" ", _CODE_BLOCK.sub(" ", text))
    han = len(_HAN.findall(prose))
    words = len(_WORD.findall(prose))
    return None if han + words == 0 else han / (han + words)


def detect_lang(question: str, answer: str = "", hint: str | None = None) -> str:
    """"zh" or "en" from the question and answer together; `hint` decides only a text with no letters."""
    share = han_share(question + "\n" + answer)
    if share is None:
        share = han_share(question + "\n" + _CODE_BLOCK.sub(" ", answer).replace("`", " "))
    if share is None:
        return hint_lang(hint) or "en"
    return "zh" if share >= ZH_SHARE else "en"


def hint_lang(label: str | None) -> str | None:
    """"zh"/"en" for a language label (`zh-CN`, `en_US`, `Chinese`...), None when it names neither."""
    if not label:
        return None
    return _HINTS.get(label.strip().lower())


def path_hint(rel: str) -> str | None:
    """The language a file's path suggests: `*.zh-CN.md`, `*.en.csv`, a `zh/` or `source_en/` folder."""
    parts = rel.lower().split("/")
    name_bits = parts[-1].split(".")[1:-1]
    for bit in reversed(name_bits):
        if hint_lang(bit):
            return hint_lang(bit)
    for part in reversed(parts[:-1]):
        lang = hint_lang(part) or hint_lang(part.removeprefix("source_")) or hint_lang(part.removeprefix("source-"))
        if lang:
            return lang
    return None
