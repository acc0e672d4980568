"""Masking personal data and secrets out of stored questions, in time linear in the text and bounded in total.

The privacy notice promises that stored questions are masked, so the patterns cover what users really paste:
e-mail addresses (also local ones such as root@localhost), phone numbers with and without separators, labelled
secrets in Chinese and English (密码是 …, password: …, api key: …, pwd=…), card numbers (checked with Luhn),
tokens and keys of common services, IP addresses and Chinese resident ids. Ordinary technical text (versions
such as 2.2.0, error codes such as E39999, CUDA 10.1, paths) is left alone.

Why the patterns look the way they do: Python's `re` backtracks, and a pattern that may start at every position
of a long run and scan to its end is quadratic (the old e-mail pattern took 3.2 s on 32k characters while
holding the GIL, freezing every other request). Every pattern here either starts only at the start of a run
(a look-behind for the run's own characters) or has bounded repetition, so each position costs a bounded
amount; `benchmarks/masking.py` shows the time against length up to 1 MB. On top of that `mask_personal` reads
at most `MAX_MASK_CHARS` characters, so no input can make it slow, whatever a future pattern does.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable

MAX_MASK_CHARS = 4000  # the store keeps 2,000 characters of a question; masking reads only a little more

_SECRET = "<secret>"
_A = re.ASCII  # \w, \d and \b mean ASCII: Chinese text around a number or a name is not part of it


def _ipv6(match: re.Match) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    # `a::b`-like identifiers are valid addresses too; a real one has a digit or several groups
    return "<ip>" if any(ch.isdigit() for ch in text) or text.count(":") >= 4 else text


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies (and 9 in 10 random digit strings do not)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group(0)


_WORD_SEGMENT = re.compile(r"[a-z]{4,}")


def _random_run(match: re.Match) -> str:
    """A long base64-like run is a secret unless it reads as a path, a URL or an identifier: a path starts with
    / or ~, or has `_ - .` (base64 has none of them with a /), or follows `.` or `:` (a URL's host), or has a
    lowercase word between slashes (home/user/anaconda3/envs/MyEnv); an identifier such as
    FusionOp_BNTrainingUpdate_ReLUV2 has fewer than 2 digits, which random base64 of 32+ characters rarely has."""
    text, start = match.group(0), match.start()
    if sum(ch.isdigit() for ch in text) < 2:
        return text
    if "/" in text:
        before = match.string[start - 1] if start else ""
        if (text[0] in "/~" or before in ".:" or any(ch in text for ch in "_-.")
                or any(_WORD_SEGMENT.fullmatch(seg) for seg in text.split("/"))):
            return text
    return _SECRET


def _labelled(match: re.Match) -> str:
    return match.group(1) + _SECRET


# Secret labels. English ones are matched case-insensitively and may follow `_` (DB_PASSWORD=…).
_EN_LABEL = (
    r"(?:passwords?|passwd|passphrase|pwd|pass|(?:(?:access|auth|refresh|api|bearer)[ _-]?)?token|"
    r"(?:client[ _-]?)?secrets?(?:[ _-]?key)?|api[ _-]?keys?|apikey|access[ _-]?keys?(?:[ _-]?id)?|"
    r"private[ _-]?key|credentials?)"
)
_ZH_LABEL = r"(?:密码|口令|密钥|秘钥|私钥|令牌|授权码|访问密钥|验证码)"
# A value: printable ASCII up to the next space or closing punctuation; bounded, so every try is short.
_VALUE = r"[!-~]{3,200}"
_VALUE_END = r"(?<![.,;:!?)\]}'\"])"  # a sentence's final full stop or comma is not part of the password

_MASKS: list[tuple[re.Pattern, str | Callable[[re.Match], str]]] = [
    (re.compile(r"-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----.*?(?:-----END [A-Z ]{0,40}PRIVATE KEY-----|\Z)", re.S),
     _SECRET),
    # tokens of known services: a fixed prefix at a word start, then a run that either is long enough (a match)
    # or stops soon, so no start scans far
    (re.compile(r"\b(?:gh[pousr]|github_pat)_[A-Za-z0-9_]{16,}", _A), _SECRET),  # GitHub tokens
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}", _A), _SECRET),  # OpenAI-style keys
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", _A), _SECRET),  # AWS access key ids
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}", _A), _SECRET),  # Slack tokens
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}", _A), _SECRET),  # Google API keys
    (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}", _A), _SECRET),  # JWTs
    # labelled secrets: "password: x", "pwd=x", "token x1y2z3", "我的密码是 x", "密码：x"
    (re.compile(rf"(?i)((?<![A-Za-z]){_EN_LABEL}\s{{0,3}}[:=：]\s{{0,3}}[\"']?){_VALUE}{_VALUE_END}", _A), _labelled),
    # without a sign ("password is x", "token x") the value must look like one: 6+ characters with a digit
    (re.compile(rf"(?i)((?<![A-Za-z]){_EN_LABEL}\s{{1,3}}(?:(?:is|was)\s{{1,3}})?)(?=[!-~]{{0,200}}?[0-9])[!-~]{{6,200}}"
                rf"{_VALUE_END}", _A), _labelled),
    (re.compile(rf"(?i)(\bbearer\s{{1,3}})[!-~]{{6,}}", _A), _labelled),
    (re.compile(rf"({_ZH_LABEL}\s{{0,3}}(?:是|为|:|=|：)?\s{{0,3}}[\"'“‘]?){_VALUE}{_VALUE_END}"), _labelled),
    # e-mail addresses: the local part starts at the start of its run (no rescans); a domain with a TLD, or a
    # single host name of 3+ letters (root@localhost) not followed by more of a name
    (re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,63}(?![A-Za-z0-9-])", _A),
     "<email>"),
    (re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z][A-Za-z-]{2,62}(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9])", _A),
     "<email>"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}+(?![0-9A-Za-z])", _A), _SECRET),  # long hex secrets
    # long base64/url-safe runs with upper, lower and digits (identifiers like ERR_UNSAFE_PORT have no digits);
    # the look-aheads run from the start of a run only
    (re.compile(r"(?<![A-Za-z0-9+/_-])(?=[A-Za-z0-9+/_-]*?[0-9])(?=[A-Za-z0-9+/_-]*?[a-z])(?=[A-Za-z0-9+/_-]*?[A-Z])[A-Za-z0-9+/_-]{32,}+={0,2}", _A), _random_run),
    (re.compile(r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])", _A), "<ip>"),
    (re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])", _A), _ipv6),
    (re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])", _A), "<id>"),  # Chinese resident id numbers
    # card numbers: 13-19 digits starting as card numbers do (2-6; thread ids and timestamps start with 1), grouped by spaces or dashes or not, with a valid Luhn checksum
    (re.compile(r"(?<![\d.+-])[2-6](?:[ -]?\d){12,18}(?![\d.])", _A), _card),
    (re.compile(r"(?<![\w+])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}(?!\d)", _A), "<phone>"),  # +86 138 0013 8000
    (re.compile(r"(?<!\d)1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}(?!\d)", _A), "<phone>"),  # Chinese mobile numbers
    (re.compile(r"(?<![\w.])0\d{2,3}[\s-]?\d{7,8}(?!\w|\.\d)", _A), "<phone>"),  # Chinese landlines: 010-12345678
    # 010-1234-5678, (555) 123 4567, 555.123.4567
    (re.compile(r"(?<![\w.])(?<!\d\.)\(?\d{3,4}\)?(?:[\s-]\d{3,4}[\s-]|\.\d{3,4}\.)\d{4}(?!\w|\.\d)", _A), "<phone>"),
    (re.compile(r"(?<![\w.+\-\[(=:/])[2-9]\d{9}(?![\w\])]|\.\d|\s?[KMGT]?i?B\b|\s?bytes?\b)", _A),
     "<phone>"),  # 5551234567; Unix timestamps start with 1, and byte counts ("2147483648 bytes", "total[3212254720]",
    # "size=3212254720") are left alone
]


def _bounded(text: str, limit: int) -> str:
    """The first `limit` characters. A run of printable ASCII cut in two at the limit (which may be a secret or
    an address, and half of one may no longer match its pattern) is dropped rather than stored half-masked;
    Chinese text, which has no spaces, is cut where it is."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if "!" <= text[limit] <= "~":
        end = limit
        while end and "!" <= head[end - 1] <= "~":
            end -= 1
        head = head[:end]
    return head


def mask_all(text: str) -> str:
    """Every mask over the whole text, however long (linear time: see the module docstring). Use
    `mask_personal` for user input; this is what the benchmark times."""
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def mask_personal(text: str, limit: int = MAX_MASK_CHARS) -> str:
    """Obvious personal data and secrets replaced by placeholders (<email>, <phone>, <ip>, <secret>, <id>,
    <card>), of the first `limit` characters of `text` (the rest is dropped: nothing unmasked is kept)."""
    return mask_all(_bounded(text, limit))
