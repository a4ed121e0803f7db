"""A teacher's cached scores as training jsonl for other trainers, texts joined from the collection:

- ``flagembedding`` (FlagEmbedding's distillation data): ``{"query", "pos": [text], "neg": [text], "pos_scores",
  "neg_scores", "prompt"}``;
- ``tevatron``: ``{"query_id", "query", "positive_passages": [{"docid", "title", "text", "score"}],
  "negative_passages": [...]}`` (the title is left empty: the collection's text already starts with it).

A query's positives are its judged passages (grade > 0) that the teacher scored; its negatives the other scored
candidates, highest first (``max_negatives`` of them, when given). Queries without a scored positive are left out.
"""

from __future__ import annotations

import json

from ..data.dataset import Dataset
from ..data.io import atomic_path
from ..errors import InputError
from .scores import ScoreCache

STYLES = ("flagembedding", "tevatron")


def export_jsonl(cache: ScoreCache, teacher: str, dataset: Dataset, path, style: str = "flagembedding",
                 max_negatives: int | None = None) -> int:
    """Write one line per judged query with a scored positive; returns the number of lines."""
    if style not in STYLES:
        raise InputError(f"unknown jsonl style {style!r} (choose from {', '.join(STYLES)})")
    cache.describe(teacher)
    lines = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for block in cache.read_blocks(teacher, qids=list(dataset.qrels), queries=2_000):
            block = block.sort_values(["qid", "score", "docid"], ascending=[True, False, True])
            texts = dict(zip(block["docid"].unique(), dataset.corpus.texts(list(block["docid"].unique()))))
            for qid, group in block.groupby("qid", sort=True):
                rel = {d for d, g in dataset.qrels.get(qid, {}).items() if g > 0}
                scored = list(zip(group["docid"], group["score"].astype(float)))
                pos = [(d, s) for d, s in scored if d in rel]
                neg = [(d, s) for d, s in scored if d not in rel][:max_negatives]
                if not pos or qid not in dataset.queries:
                    continue
                f.write(json.dumps(_line(style, qid, dataset.queries[qid], pos, neg, texts),
                                   ensure_ascii=False) + "\n")
                lines += 1
    return lines


def _line(style: str, qid: str, query: str, pos, neg, texts: dict) -> dict:
    if style == "flagembedding":
        return {"query": query, "pos": [texts[d] for d, _ in pos], "neg": [texts[d] for d, _ in neg],
                "pos_scores": [s for _, s in pos], "neg_scores": [s for _, s in neg], "prompt": ""}
    passage = lambda d, s: {"docid": d, "title": "", "text": texts[d], "score": s}  # the text holds the title
    return {"query_id": qid, "query": query, "positive_passages": [passage(d, s) for d, s in pos],
            "negative_passages": [passage(d, s) for d, s in neg]}
