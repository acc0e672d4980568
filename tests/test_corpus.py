"""Parsing the real MindSpore FAQ pages into entries, and pairing zh/en twins into items."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from faqbot.corpus import heading_slug, normalise
from faqbot.sources import load_corpus, pair_report

EN_R11 = "mindspore-r1.1/docs/faq/source_en/"
ZH_R11 = "mindspore-r1.1/docs/faq/source_zh_cn/"
MS_EN = "mindspore-master/docs/mindspore/source_en/faq/"
MS_ZH = "mindspore-master/docs/mindspore/source_zh_cn/faq/"
LITE_EN = "mindspore-master/docs/lite/docs/source_en/reference/faq.md"
LITE_ZH = "mindspore-master/docs/lite/docs/source_zh_cn/reference/faq.md"
VLLM_EN = "mindspore-master/docs/vllm_mindspore/docs/source_en/faqs/faqs.md"
VLLM_ZH = "mindspore-master/docs/vllm_mindspore/docs/source_zh_cn/faqs/faqs.md"

# Counted on the pages: `grep -cE '^<font size=3>\*\*Q|^#+ +Q[:：]' <page>`; lite = 10 Q + 25 numbered cases
# (`grep -c '^[0-9]\+\. '`), vllm = its 4 `###` headings.
EXPECTED_COUNTS = {
    EN_R11 + "backend_running.md": 13,
    ZH_R11 + "backend_running.md": 15,
    EN_R11 + "installation.md": 17,
    ZH_R11 + "installation.md": 18,
    EN_R11 + "platform_and_system.md": 10,
    ZH_R11 + "platform_and_system.md": 11,
    EN_R11 + "supported_features.md": 19,
    ZH_R11 + "supported_features.md": 19,
    EN_R11 + "mindspore_lite.md": 2,
    ZH_R11 + "mindinsight_use.md": 3,
    MS_EN + "data_processing.md": 31,
    MS_ZH + "data_processing.md": 31,
    MS_EN + "installation.md": 42,
    MS_ZH + "implement_problem.md": 38,
    MS_EN + "feature_advice.md": 22,
    MS_EN + "precision_tuning.md": 1,
    "mindspore-master/docs/mindformers/docs/source_en/faq/feature_related.md": 4,
    "mindspore-master/docs/mindpandas/docs/source_zh_cn/faq.md": 13,
    "mindspore-master/docs/serving/docs/source_en/faq.md": 7,
    "mindspore-master/docs/federated/docs/source_zh_cn/faq.md": 1,
    LITE_EN: 35,
    LITE_ZH: 35,
    VLLM_EN: 4,
    VLLM_ZH: 4,
}


def _entries(corpus, page):
    return [e for e in corpus.entries if e.page == page]


def _entry(corpus, page, question):
    found = [e for e in _entries(corpus, page) if e.question == question]
    assert len(found) == 1, [e.question for e in _entries(corpus, page)]
    return found[0]


def _item_of(corpus, entry):
    return next(i for i in corpus.items if entry.lang in i.entries and i.entries[entry.lang] is entry)


def test_every_page_of_the_corpus_is_read(corpus, corpus_dir):
    pages = sorted(p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*.md") if p.name != "README.md")
    assert len(pages) == 62
    assert sorted(corpus.files) == pages
    assert corpus.problems == []


def test_entry_counts_per_page_match_the_questions_on_the_page(corpus):
    counts = {page: len(_entries(corpus, page)) for page in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS


def test_corpus_size_and_links(corpus):
    assert 700 <= len(corpus.entries) <= 800
    assert sum(1 for i in corpus.items if i.bilingual) >= 300
    assert all(e.url.startswith("https://www.mindspore.cn/") for e in corpus.entries)
    assert all(e.source_url.startswith("https://gitee.com/mindspore/docs/blob/") for e in corpus.entries)


def test_font_question_page_is_read_with_its_section(corpus):
    e = _entry(corpus, EN_R11 + "installation.md",
               "What should I do if an error message `SSL:CERTIFICATE_VERIFY_FATLED` is displayed when I use pip "
               "to install MindSpore?")
    assert e.answer == "Add the `--trusted-host=ms-release.obs.cn-north-4.myhuaweicloud.com` parameter to the pip " \
                       "installation command and try again."
    assert e.heading_path == ("Installation", "Installing Using pip")
    assert e.url == "https://www.mindspore.cn/doc/faq/en/r1.1/installation.html#installing-using-pip"
    assert e.source_url == "https://gitee.com/mindspore/docs/blob/r1.1/docs/faq/source_en/installation.md"
    assert (e.version, e.component, e.category, e.lang) == ("r1.1", "mindspore", "installation", "en")


def test_font_question_without_section_links_to_the_page(corpus):
    e = _entries(corpus, ZH_R11 + "backend_running.md")[0]
    assert e.url == "https://www.mindspore.cn/doc/faq/zh-CN/r1.1/backend_running.html"
    assert e.heading_path == ("后端运行类",)  # the page starts with a UTF-8 BOM: the title is clean


def test_heading_question_page_is_read_with_an_anchor(corpus):
    e = _entry(corpus, MS_EN + "data_processing.md", "How do I offload data if I do not use high-level APIs?")
    assert e.answer.startswith("You can implement by referring to the [test_tdt_data_transfer.py](https://gitee.com/")
    assert e.url == ("https://www.mindspore.cn/docs/en/master/faq/data_processing.html"
                     "#q-how-do-i-offload-data-if-i-do-not-use-high-level-apis")
    assert e.heading_path == ("Data Processing",)
    assert e.position == 0


def test_zh_heading_question_anchor_keeps_chinese(corpus):
    e = _entry(corpus, MS_ZH + "operators_compile.md", "MindSpore支持矩阵转置吗？")
    assert e.url == "https://www.mindspore.cn/docs/zh-CN/master/faq/operators_compile.html#q-mindspore支持矩阵转置吗"


def test_headings_as_questions_page_keeps_its_section(corpus):
    e = _entry(corpus, VLLM_EN, "Git-LFS Installation")
    assert e.heading_path == ("Frequently Asked Questions", "Model-related Issues")
    assert e.url == "https://www.mindspore.cn/vllm_mindspore/docs/en/master/faqs/faqs.html#git-lfs-installation"
    assert "```shell\n   git lfs install\n   ```" in e.answer
    zh = _entry(corpus, VLLM_ZH, "`import vllm_mindspore`时找不到`torch`")
    assert zh.heading_path == ("常见问题", "部署相关问题")
    assert zh.component == "vllm_mindspore"


def test_troubleshooting_cases_are_entries_under_their_headings(corpus):
    convert = [e for e in _entries(corpus, LITE_EN) if e.heading_path[-1] == "Failed to Convert a Model"]
    assert [e.question for e in convert] == [
        "The model path is incorrect or the file is damaged.",
        "Unsupported operators exist.",
        "Unsupported operators exist.",
    ]
    assert "- Solution: Check whether the model path" in convert[0].answer
    assert convert[0].url == "https://www.mindspore.cn/lite/docs/en/master/reference/faq.html#failed-to-convert-a-model"
    assert convert[1].id != convert[2].id and convert[2].id.endswith("-2")

    npu = [e for e in _entries(corpus, LITE_EN)
           if e.heading_path == ("Troubleshooting", "Model Inference Failed", "NPU Inference Issues", "Failed to Build a Graph")]
    assert len(npu) == 1
    # the 4th "Failed to Build a Graph" heading on the page: Sphinx numbers repeated ids
    assert npu[0].url.endswith("#failed-to-build-a-graph-3")

    other = [e for e in _entries(corpus, LITE_EN) if e.heading_path[-1] == "Other Issues"]
    assert len(other) == 10
    assert other[0].question == "Why does a device not take effect after being specified as a GPU or NPU?"


def test_question_marker_without_colon_and_full_width_colons(corpus):
    e = _entry(corpus, LITE_ZH, "为何将设备指定为GPU/NPU后，并没有起作用？")
    assert e.answer.startswith("Device的优先级取决于配置的先后顺序")
    f = _entry(corpus, ZH_R11 + "installation.md", "MindSpore是否支持Nvidia GPU独立显卡+Windows操作系统的个人电脑？")
    assert not f.answer.startswith(("A:", "A：", "：")), f.answer[:20]


def test_answers_keep_code_blocks_lists_and_links(corpus):
    e = _entry(corpus, MS_EN + "data_processing.md", "How does `Dataset` combine two `columns` into one `column`?")
    assert "```python" in e.answer and e.answer.count("```") >= 2
    lists = _entry(corpus, MS_EN + "data_processing.md",
                   "In the process of using `Dataset` to process data, the memory consumption is high. How to optimize it?")
    assert "\n1. Before defining the dataset" in lists.answer and "\n5. If you further use" in lists.answer
    for entry in corpus.entries:  # no fence is cut in half by the parser
        fences = [ln for ln in entry.answer.splitlines() if re.match(r"\s*```", ln)]
        assert len(fences) % 2 == 0, (entry.page, entry.question)


def test_separators_and_view_source_badge_are_stripped(corpus):
    for e in corpus.entries:
        assert not re.search(r"^\s*<br\s*/?>\s*$", e.answer, re.M), (e.page, e.question)
        assert "View Source" not in e.answer and "logo_source" not in e.answer
        assert e.answer == e.answer.strip() and e.answer
        assert "**" not in e.question and "<font" not in e.question and not e.question.startswith("Q")


def test_ids_are_stable_hashes_of_the_question(corpus):
    ids = [e.id for e in corpus.entries]
    assert len(ids) == len(set(ids))
    e = _entry(corpus, MS_EN + "data_processing.md", "How do I offload data if I do not use high-level APIs?")
    digest = hashlib.sha1(normalise(e.question).encode()).hexdigest()[:8]
    assert e.id == f"master/mindspore/data_processing/en/{digest}"
    assert all(re.fullmatch(r"(r1\.1|master)/[a-z_]+/[a-z0-9_]+/(zh|en)/[0-9a-f]{8}(-\d+)?", i) for i in ids)
    item_ids = [i.id for i in corpus.items]
    assert len(item_ids) == len(set(item_ids))


def test_component_and_category_from_the_path(corpus):
    assert {e.component for e in _entries(corpus, EN_R11 + "mindspore_lite.md")} == {"lite"}
    assert {e.component for e in _entries(corpus, ZH_R11 + "mindinsight_use.md")} == {"mindinsight"}
    assert {e.component for e in _entries(corpus, EN_R11 + "network_models.md")} == {"mindspore"}
    lite = _entries(corpus, LITE_ZH)[0]
    assert (lite.version, lite.component, lite.category, lite.lang) == ("master", "lite", "lite", "zh")
    assert lite.url.startswith("https://www.mindspore.cn/lite/docs/zh-CN/master/reference/faq.html#")
    assert {e.component for e in corpus.entries} == {
        "mindspore", "lite", "mindinsight", "serving", "federated", "mindarmour", "mindpandas", "graphlearning",
        "mindformers", "vllm_mindspore"}


@pytest.mark.parametrize(("title", "slug"), [
    ("Q: What should I do if `import mindspore` fails?", "q-what-should-i-do-if-import-mindspore-fails"),
    ("Model Fails to Load During Offline/Online Inference", "model-fails-to-load-during-offlineonline-inference"),
    ("`torch` Not Found When Importing `vllm_mindspore`", "torch-not-found-when-importing-vllm_mindspore"),
    ("Q: MindSpore支持矩阵转置吗？", "q-mindspore支持矩阵转置吗"),
    ("离线或在线推理时，报模型无法加载", "离线或在线推理时报模型无法加载"),
    ("Q: [link](https://x.y) **bold** (A, B)", "q-link-bold-a-b"),
])
def test_heading_slug_follows_sphinx_myst_ids(title, slug):
    assert heading_slug(title) == slug


# ---------------------------------------------------------------- pairing


@pytest.mark.parametrize(("en_page", "zh_page"), [
    (MS_EN + "feature_advice.md", MS_ZH + "feature_advice.md"),
    (EN_R11 + "platform_and_system.md", ZH_R11 + "platform_and_system.md"),
])
def test_pynative_vs_graph_mode_twins_land_in_one_item(corpus, en_page, zh_page):
    en = _entry(corpus, en_page, "What is the difference between the PyNative and Graph modes?")
    zh = _entry(corpus, zh_page, "PyNative模式和Graph模式的区别？")
    item = _item_of(corpus, en)
    assert item.bilingual and item.entries["zh"] is zh
    assert item.id == f"{en.version}/{en.component}/{en.category}/{en.id.rsplit('/', 1)[1]}"


def test_twin_pages_with_the_same_questions_pair_completely(corpus):
    report = pair_report(corpus)
    for page in (LITE_EN, MS_EN + "data_processing.md", MS_EN + "installation.md", VLLM_EN, EN_R11 + "supported_features.md"):
        r = report[page]
        assert r["zh"] == r["en"] == r["paired"], (page, r)


def test_questions_only_in_one_language_stay_unpaired(corpus):
    r = pair_report(corpus)[EN_R11 + "platform_and_system.md"]
    assert r == {"zh": 11, "en": 10, "paired": 10, "unpaired_en": [],
                 "unpaired_zh": ["MindSpore与ModelArts是什么关系，在ModelArts中能使用MindSpore吗？"]}


def test_every_pair_is_a_translation_by_its_code_or_position(corpus):
    """Paired entries sit in the same slot of their pages, up to the questions one language lacks."""
    report = pair_report(corpus)
    for item in corpus.items:
        if item.bilingual:
            zh, en = item.entries["zh"], item.entries["en"]
            r = report[en.page]
            assert abs(zh.position - en.position) <= len(r["unpaired_zh"]) + len(r["unpaired_en"]) + 1


def _drop_question(text: str, question_line_start: str) -> str:
    """Remove one Q block (from its question line up to the next question) from a page."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(question_line_start))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("<font size=3>**Q", "## Q", "#")))
    return "".join(lines[:start] + lines[end:])


@pytest.mark.parametrize("dropped", [
    "<font size=3>**Q：MindSpore支持矩阵转置吗？",  # no ASCII evidence: paired only by position
    "<font size=3>**Q：`nn.Embedding`层与PyTorch",  # strong code evidence
])
def test_question_deleted_from_zh_twin_leaves_en_unpaired_not_mispaired(tmp_path, corpus, corpus_dir, dropped):
    for page in (EN_R11 + "supported_operators.md", ZH_R11 + "supported_operators.md"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(corpus_dir / page, tmp_path / page)
    zh_path = tmp_path / ZH_R11 / "supported_operators.md"
    zh_path.write_text(_drop_question(zh_path.read_text(encoding="utf-8-sig"), dropped), encoding="utf-8")

    small = load_corpus(tmp_path)
    r = pair_report(small)[EN_R11 + "supported_operators.md"]
    assert (r["zh"], r["en"]) == (10, 11)
    assert r["unpaired_zh"] == [] and len(r["unpaired_en"]) == 1
    real_pairs = {(i.entries["zh"].question, i.entries["en"].question) for i in corpus.items if i.bilingual}
    small_pairs = {(i.entries["zh"].question, i.entries["en"].question) for i in small.items if i.bilingual}
    assert small_pairs <= real_pairs  # every pair made is one the full corpus also makes
    assert len(small_pairs) == 10


def test_items_come_in_a_deterministic_page_order(corpus, corpus_dir):
    again = load_corpus(corpus_dir)
    assert [i.id for i in again.items] == [i.id for i in corpus.items]
    versions = [i.version for i in corpus.items]
    assert versions == sorted(versions)  # "master" < "r1.1"
    lite = [i for i in corpus.items if i.component == "lite" and i.version == "master"]
    assert [i.entries["en"].position for i in lite] == list(range(35))


def test_every_entry_belongs_to_exactly_one_item(corpus):
    in_items = [e.id for i in corpus.items for e in i.entries.values()]
    assert sorted(in_items) == sorted(e.id for e in corpus.entries)
    assert len(corpus.items) == len(corpus.entries) - sum(1 for i in corpus.items if i.bilingual)


def test_pages_that_are_not_faq_pages_are_reported(tmp_path: Path):
    (tmp_path / "notes.md").write_text("# Notes\n\nJust prose, no questions.\n", encoding="utf-8")
    c = load_corpus(tmp_path)
    assert c.entries == [] and c.files == []
    assert [p.path for p in c.problems] == ["notes.md"]
    assert "no FAQ entries recognised" in c.problems[0].message
