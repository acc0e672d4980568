"""Question/answer tables: CSV, TSV, JSONL, a JSON list, and XLSX (through the optional openpyxl).

One row, one entry. Columns (header names case-insensitive): `question` and `answer` (required; `q`/`a` and
Azure question answering's `Question`/`Answer` too), optional `lang`, `id` (rows sharing one id in two
languages are twins), `alternates` (a `|`-separated cell, or extra `alternate...` / FastGPT `indexes`
columns), `url` (Azure's `Source` when it is a link), `source_url`, `version`, `component`, `category`, and
Azure's `Metadata` (`key:value|key:value`) for version/component/category. A bad row is reported with
file:line and skipped; the rest is kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Iterable, Iterator

from faqbot.schema import Problem
from faqbot.sources.record import Record, bad

_COLUMNS = {
    "question": "question", "q": "question", "questions": "question", "问题": "question",
    "answer": "answer", "a": "answer", "answers": "answer", "答案": "answer", "回答": "answer",
    "lang": "lang", "language": "lang", "locale": "lang", "语言": "lang",
    "id": "id", "qnaid": "id", "key": "id",
    "alternates": "alternates", "indexes": "alternates",
    "url": "url", "link": "url", "source": "source", "source_url": "source_url",
    "version": "version", "component": "component", "category": "category", "metadata": "metadata",
}


def column(name: str) -> str | None:
    """The field a header names, or None for a column we do not use."""
    key = " ".join(str(name or "").split()).lower().replace(" ", "_")
    if key in _COLUMNS:
        return _COLUMNS[key]
    if key.startswith(("alternate", "index")):
        return "alternates"
    return None


def decode(data: bytes) -> str:
    """Text of a table file: by its BOM (UTF-8/UTF-16), else UTF-8, else GB18030. UnicodeDecodeError when
    nothing fits (GB18030 decodes most byte strings, so a wrong guess shows up as a bad row, not a crash)."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(enc)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as first:
        try:  # not UTF-8: a Chinese spreadsheet saved by Excel is GB18030 (GBK), the usual other encoding here
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise first from None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _metadata(cell: str) -> dict[str, str]:
    out = {}
    for part in cell.split("|"):
        key, _, value = part.partition(":")
        if value.strip():
            out[key.strip().lower()] = value.strip()
    return out


def rows_to_records(rel: str, header: list, rows: Iterable[tuple[int, list]], lang_hint: str | None,
                    problems: list[Problem]) -> list[Record]:
    """Records from a header and (line, cells) rows; bad rows become problems."""
    fields = [column(h) for h in header]
    if "question" not in fields or "answer" not in fields:
        missing = " and ".join(f for f in ("question", "answer") if f not in fields)
        problems.append(bad(rel, 1, f"no {missing} column (header: {', '.join(_cell(h) for h in header) or 'empty'}); "
                                    "name the columns question and answer (or q and a)"))
        return []
    out: list[Record] = []
    for line, cells in rows:
        values: dict[str, str] = {}
        alternates: list[str] = []
        for f, value in zip(fields, cells):
            value = _cell(value)
            if f == "alternates":
                alternates += [a.strip() for a in value.split("|") if a.strip()]
            elif f and value and f not in values:
                values[f] = value
        if not any(_cell(c) for c in cells):
            continue  # a blank row
        if not values.get("question") or not values.get("answer"):
            missing = "question" if not values.get("question") else "answer"
            problems.append(bad(rel, line, f"the row has no {missing}; it was skipped (fill it in or delete the row)"))
            continue
        meta = _metadata(values.get("metadata", ""))
        source = values.get("source", "")
        out.append(Record(
            question=" ".join(values["question"].split()), answer=values["answer"].replace("\r\n", "\n").strip(),
            page=rel, line=line, lang_hint=values.get("lang") or lang_hint, explicit_lang=bool(values.get("lang")),
            id=values.get("id", ""), alternates=tuple(dict.fromkeys(alternates)),
            url=values.get("url") or (source if source.startswith(("http://", "https://")) else ""),
            source_url=values.get("source_url", ""),
            version=values.get("version") or meta.get("version", ""),
            component=values.get("component") or meta.get("component", ""),
            category=values.get("category") or meta.get("category", ""),
            position=len(out),
        ))
    return out


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list]]:
    csv.field_size_limit(max(csv.field_size_limit(), 16 << 20))  # a long answer (a pasted log) is one cell
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    prev = 0
    for cells in reader:
        yield prev + 1, cells
        prev = reader.line_num


def _delimiter(text: str, suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff(text[:4096].split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def load_delimited(path: Path, rel: str, lang_hint: str | None) -> tuple[list[Record], list[Problem]]:
    problems: list[Problem] = []
    text = decode(path.read_bytes())
    rows = _csv_rows(text, _delimiter(text, path.suffix.lower()))
    try:
        first = next(rows, None)
        if first is None:
            return [], [bad(rel, None, "the file is empty; add a header row (question,answer) and rows")]
        records = rows_to_records(rel, first[1], rows, lang_hint, problems)
    except csv.Error as exc:
        return [], [bad(rel, None, f"cannot read it as {'TSV' if path.suffix.lower() == '.tsv' else 'CSV'} ({exc}); "
                                   "check its quoting")]
    return records, problems


def _object_records(rel: str, objects: Iterable[tuple[int, object]], lang_hint: str | None,
                    problems: list[Problem]) -> list[Record]:
    """JSON objects -> records through the same column rules as a table (each object is its own header)."""
    out: list[Record] = []
    for line, obj in objects:
        if not isinstance(obj, dict):
            problems.append(bad(rel, line, "not a JSON object with question and answer; it was skipped"))
            continue
        header, cells = [], []
        for key, value in obj.items():
            if isinstance(value, list):  # "alternates": ["...", "..."]
                value = "|".join(_cell(v) for v in value)
            header.append(key)
            cells.append(value)
        fields = [column(h) for h in header]
        if "question" not in fields or "answer" not in fields:
            missing = " and ".join(f for f in ("question", "answer") if f not in fields)
            problems.append(bad(rel, line, f"no {missing} field; it was skipped"))
            continue
        for r in rows_to_records(rel, header, [(line, cells)], lang_hint, problems):
            r.position = len(out)
            out.append(r)
    return out


def load_jsonl(path: Path, rel: str, lang_hint: str | None) -> tuple[list[Record], list[Problem]]:
    problems: list[Problem] = []
    objects = []
    for line, raw in enumerate(decode(path.read_bytes()).splitlines(), 1):
        if not raw.strip():
            continue
        try:
            objects.append((line, json.loads(raw)))
        except ValueError as exc:
            problems.append(bad(rel, line, f"bad JSON ({getattr(exc, 'msg', exc)}); the line was skipped"))
    return _object_records(rel, objects, lang_hint, problems), problems


def load_json(path: Path, rel: str, lang_hint: str | None) -> tuple[list[Record], list[Problem]]:
    """A JSON list of objects (or an object holding one under `entries`, `faqs`, `data` or `items`)."""
    text = decode(path.read_bytes())
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [], [bad(rel, getattr(exc, "lineno", None), f"bad JSON ({getattr(exc, 'msg', exc)}); fix the file")]
    if isinstance(data, dict):
        data = next((data[k] for k in ("entries", "faqs", "data", "items") if isinstance(data.get(k), list)), None)
    if not isinstance(data, list):
        return [], [bad(rel, None, "expected a JSON list of {question, answer} objects")]
    problems: list[Problem] = []
    # an object's line: where its text starts (objects are written one after another)
    lines, at = [], 0
    for obj in data:
        key = json.dumps(next(iter(obj.values()), ""), ensure_ascii=False) if isinstance(obj, dict) and obj else "{"
        found = text.find(key, at)
        at = found + 1 if found >= 0 else at
        lines.append(text.count("\n", 0, found if found >= 0 else at) + 1)
    return _object_records(rel, list(zip(lines, data)), lang_hint, problems), problems


def load_xlsx(path: Path, rel: str, lang_hint: str | None) -> tuple[list[Record], list[Problem]]:
    """The first sheet of a workbook, first row the header (openpyxl: `pip install faqbot[xlsx]`)."""
    try:
        import openpyxl
    except ImportError:
        return [], [bad(rel, None, "reading .xlsx needs openpyxl: pip install 'faqbot[xlsx]' (or save it as CSV)")]
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds (zip, XML, key) for a broken workbook
        return [], [bad(rel, None, f"cannot open the workbook ({type(exc).__name__}: {exc}); re-save it from a spreadsheet")]
    problems: list[Problem] = []
    try:
        sheet = book.worksheets[0]
        rows = ((n, list(cells)) for n, cells in enumerate(sheet.iter_rows(values_only=True), 1))
        first = next(rows, None)
        records = rows_to_records(rel, first[1], rows, lang_hint, problems) if first else []
        if first is None:
            problems.append(bad(rel, None, "the first sheet is empty; put a header row (question, answer) on it"))
    finally:
        book.close()
    return records, problems
