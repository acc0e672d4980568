"""`faqbot stats`: figures about the corpus, and clear messages for a bad corpus folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from faqbot.cli import main

GOOD_PAGE = "mindspore-master/docs/serving/docs/source_en/faq.md"  # 7 questions


def _stats_json(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["stats", "--json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def _good_page_into(folder: Path, corpus_dir: Path) -> None:
    target = folder / GOOD_PAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(corpus_dir / GOOD_PAGE, target)


def test_stats_json_reports_the_whole_corpus(capsys, corpus, corpus_dir):
    code, stats, err = _stats_json(capsys, "--corpus", str(corpus_dir))
    assert code == 0 and err == ""
    assert stats["files"] == 62
    assert stats["entries"] == len(corpus.entries) >= 700
    assert stats["items"] == len(corpus.items)
    assert stats["bilingual_items"] >= 300
    assert stats["entries_without_url"] == 0
    assert stats["by_version"] == {"master": sum(e.version == "master" for e in corpus.entries),
                                   "r1.1": sum(e.version == "r1.1" for e in corpus.entries)}
    assert sum(stats["by_lang"].values()) == sum(stats["by_component"].values()) == stats["entries"]
    assert stats["by_component"]["vllm_mindspore"] == 8
    assert stats["unpaired"]["mindspore-r1.1/docs/faq/source_en/platform_and_system.md"]["zh"] == [
        "MindSpore与ModelArts是什么关系，在ModelArts中能使用MindSpore吗？"]
    assert stats["problems"] == []


def test_stats_uses_faqbot_corpus_from_the_environment(capsys, monkeypatch, tmp_path, corpus_dir):
    _good_page_into(tmp_path, corpus_dir)
    monkeypatch.setenv("FAQBOT_CORPUS", str(tmp_path))
    code, stats, _ = _stats_json(capsys)
    assert code == 0
    assert (stats["files"], stats["entries"], stats["bilingual_items"]) == (1, 7, 0)


def test_stats_table_is_readable(capsys, corpus_dir):
    assert main(["stats", "--corpus", str(corpus_dir)]) == 0
    out = capsys.readouterr().out
    assert "bilingual_items" in out and "entries_without_url" in out
    assert "mindspore-master/docs/lite/docs/source_en/reference/faq.md" in out
    assert "unpaired zh:" in out


def test_missing_corpus_folder_is_named_and_fails(capsys, tmp_path):
    missing = tmp_path / "nope"
    code, stats, err = _stats_json(capsys, "--corpus", str(missing))
    assert code == 1
    assert str(missing) in err and "does not exist" in err and "--corpus" in err
    assert stats["entries"] == 0 and stats["problems"][0]["path"] == str(missing)


def test_empty_corpus_folder_is_named_and_fails(capsys, tmp_path):
    code, stats, err = _stats_json(capsys, "--corpus", str(tmp_path))
    assert code == 1
    assert f"no *.md pages found under {tmp_path}" in err
    assert "Traceback" not in err


def test_non_utf8_page_is_reported_and_the_rest_still_read(capsys, tmp_path, corpus_dir):
    _good_page_into(tmp_path, corpus_dir)
    (tmp_path / "broken.md").write_bytes("<font size=3>**Q: caf\xe9?**</font>\n".encode("latin-1"))
    code, stats, err = _stats_json(capsys, "--corpus", str(tmp_path))
    assert code == 0
    assert "broken.md is not valid UTF-8" in err
    assert stats["entries"] == 7 and stats["files"] == 1
    assert [p["path"] for p in stats["problems"]] == ["broken.md"]


def test_page_with_a_bom_is_read(capsys, tmp_path, corpus_dir):
    page = tmp_path / "mindspore-r1.1/docs/faq/source_en/x.md"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"\xef\xbb\xbf# T\n\n<font size=3>**Q: Why?**</font>\n\nA: Because.\n")
    code, stats, err = _stats_json(capsys, "--corpus", str(tmp_path))
    assert (code, stats["entries"], err) == (0, 1, "")


def test_page_without_entries_is_named(capsys, tmp_path, corpus_dir):
    (tmp_path / "prose.md").write_text("# Prose\n\n## Section\n\nNo question here.\n", encoding="utf-8")
    code, _, err = _stats_json(capsys, "--corpus", str(tmp_path))
    assert code == 1  # nothing could be read
    assert "prose.md: no FAQ entries recognised" in err

    _good_page_into(tmp_path, corpus_dir)
    code, stats, err = _stats_json(capsys, "--corpus", str(tmp_path))
    assert code == 0 and stats["entries"] == 7
    assert "prose.md: no FAQ entries recognised" in err


def test_faqbot_console_script_prints_one_json_object(corpus_dir):
    script = Path(sys.executable).with_name("faqbot")
    run = subprocess.run([str(script), "stats", "--json", "--corpus", str(corpus_dir)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert stats["files"] == 62 and stats["entries"] >= 700 and stats["bilingual_items"] >= 300
