"""RankingParams.cross_lexical (fast tier): a question in a language the FAQ is not written in is ranked by meaning,
not by an identifier it happens to share with an entry (docs/any-faq.md, the tuning sweep of scripts/eval_faqs.py).

The embedder here reads concepts, not characters, so the test can set the dense gap between two entries by hand:
the "freeze a layer" entry is the closer one in meaning, the `gather` entry holds the only word a question shares
with the BM25 index. A bilingual FAQ (MindSpore, ant-design) keeps the bonus in both languages."""

from __future__ import annotations

import csv
from dataclasses import replace

import numpy as np
import pytest

from faqbot.embed import BaseEmbedder
from faqbot.lexical import LexicalIndex
from faqbot.search import Retriever
from faqbot.sources import load_corpus
from faqbot.store import build_index

# concept -> (dimension, weight) for every word that names it; texts naming none share one background dimension
CONCEPTS = {"冻结": (1, 1.0), "定住": (1, 1.0), "freeze": (1, 1.0), "gather": (2, 0.9), "安装": (3, 1.0), "install": (3, 1.0)}
FREEZE_Q = "如何冻结某一层的参数，不让它更新？"
GATHER_Q = "paddle.gather 和 torch.gather 的 gather 有什么区别？"
FILLER = ["训练时显存不足怎么办？", "如何升级到最新版本？", "多卡训练报通信错误", "模型文件太大如何压缩？",
          "数据读取太慢怎么办？", "损失值变成非数怎么处理？", "预测时怎样打印每一步的耗时？", "怎样设置学习率衰减？",
          "如何保存模型？", "如何加载预训练权重？", "多进程读数据卡住", "怎样固定随机种子？", "如何导出推理模型？",
          "显卡利用率很低", "怎么查看版本号？", "如何卸载？"]


class ConceptEmbedder(BaseEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.name, self.dim, self.max_tokens = "test:concepts", 8, 512

    def _encode(self, texts, is_query):
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word, (dim, weight) in CONCEPTS.items():
                if word in text.lower():
                    out[row, dim] = weight
            if not out[row].any():
                out[row, 0] = 1.0
        return out

    def _count(self, text, is_query):
        return len(text) // 2 + 2


def _retriever(tmp_path, rows: list[tuple[str, str, str]]) -> Retriever:
    folder = tmp_path / "faq"
    folder.mkdir()
    with (folder / "faq.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lang", "question", "answer"])
        for n, (lang, question, answer) in enumerate(rows):
            w.writerow([f"q{n}", lang, question, answer])
    corpus = load_corpus(folder)
    assert not corpus.problems and len(corpus.entries) == len(rows)
    embedder = ConceptEmbedder()
    index = build_index(corpus, embedder, None, progress=False, reuse=False)
    return Retriever(index, LexicalIndex.build(index.items, ""), embedder)


ZH_ONLY = [("zh", FREEZE_Q, "把该层参数的 stop_gradient 设为 True。"),
           ("zh", GATHER_Q, "两者的 index 参数含义不同，请看 API 文档。")] + [("zh", q, "请看文档。") for q in FILLER]


def _first_question(r: Retriever, query: str, **change) -> str:
    ranking = r.rank(query, params=replace(r.params, **change) if change else None)
    return r.items[int(ranking.order[0])].entry("zh").question


def test_an_en_question_on_a_zh_only_faq_is_not_decided_by_an_ascii_token(tmp_path):
    r = _retriever(tmp_path, ZH_ONLY)
    query = "How do I freeze one layer? I call gather with an index on its output"
    assert r.rank(query).lang == "en"
    assert r.lexical.scores(query).max() >= r.params.lexical_floor  # the shared word passes the BM25 floor
    # the old rule: BM25 on `gather` overturns the closer meaning
    assert _first_question(r, query, cross_lexical="all") == GATHER_Q
    assert _first_question(r, query) == FREEZE_Q  # shipped: the dense score alone decides
    assert _first_question(r, query, use_lexical=False) == FREEZE_Q


def test_a_question_in_the_faqs_own_language_keeps_its_bm25_bonus(tmp_path):
    r = _retriever(tmp_path, ZH_ONLY)
    query = "想把这部分定住，输出再用 gather 按 index 取出来"
    assert r.rank(query).lang == "zh"
    assert _first_question(r, query, use_lexical=False) == FREEZE_Q
    assert _first_question(r, query) == GATHER_Q  # the same evidence still counts in the FAQ's language


def test_a_bilingual_faq_keeps_the_bonus_for_both_languages(tmp_path):
    """Why MindSpore's figures do not move: the rule looks at the FAQ's languages, not at each entry's."""
    r = _retriever(tmp_path, ZH_ONLY + [("en", "How do I install it?", "Use pip.")])
    query = "How do I freeze one layer? I call gather with an index on its output"
    assert _first_question(r, query) == GATHER_Q
    # scaling per entry instead (the "item" rule, not shipped) drops it for the zh entries
    assert _first_question(r, query, cross_lexical="item") == FREEZE_Q


def test_an_unknown_rule_is_a_clear_error(tmp_path):
    r = _retriever(tmp_path, ZH_ONLY)
    with pytest.raises(ValueError, match="use all, item or corpus"):
        r.rank("How do I freeze one layer?", params=replace(r.params, cross_lexical="nope"))
