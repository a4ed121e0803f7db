"""ColBERT and SPLADE indexes on SciFact beside the dense FAISS flat index: size on disk, build time, QPS.

All three are built from scratch in the same run over the same corpus (SciFact, 5,183 documents) and searched with
the 300 SciFact test queries, top ``k``. Build time is split into encoding the corpus and building the index from
the encoding. QPS is given for the search alone (queries encoded beforehand) and end to end (encoding included).

- dense: all-MiniLM-L6-v2, FAISS flat (the baseline).
- ColBERT: all-MiniLM-L6-v2 converted to a ColBERT model with a fresh, untrained 128-d projection (seed 0): right
  for speed and size, not for effectiveness (its nDCG@10 is not a ColBERT result); IVF-PQ (the default at this
  size) and flat token indexes, each followed by exact MaxSim re-scoring.
- SPLADE: the packaged SPLADE-tiny, Lucene impact index.

    python benchmarks/bench_late_sparse.py [--k 100] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from irdistill.data import load_dataset
from irdistill.evaluation import evaluate_run
from irdistill.index import ColbertIndex, DenseIndex, SpladeIndex, encode_corpus, encode_texts, vectors_key
from irdistill.index.colbert import encode_tokens
from irdistill.index.splade import encode_vectors, sparse_weights
from irdistill.models import load_colbert, load_sentence_transformer, load_splade
from irdistill.experiment import publish_benchmark, timed

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def size_mb(path) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 2**20
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20


def clock(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--root", default="indexes/bench-late-sparse", help="where the benchmark builds its indexes")
    ap.add_argument("--write", help="also write the table into this Markdown file")
    args = ap.parse_args()

    import torch

    ds = load_dataset(args.dataset, "test")
    qids = list(ds.queries)
    texts = [ds.queries[q] for q in qids]
    ids = ds.corpus.ids.to_pylist()
    root = os.path.join(args.root, ds.name)
    rows = []

    def row(name, encode_s, index_s, path, search, end_to_end, notes=""):
        t_search, _ = timed(search)
        t_e2e, run = timed(end_to_end, repeat=1)
        rows.append({"index": name, "encode s": encode_s, "index s": index_s, "size MB": size_mb(path),
                     "QPS search": len(qids) / t_search, "QPS end-to-end": len(qids) / t_e2e,
                     "nDCG@10": evaluate_run(ds.qrels, run, "ndcg@10")["ndcg@10"], "notes": notes})
        print(rows[-1], flush=True)

    # dense FAISS flat (baseline)
    dense_model = load_sentence_transformer(MODEL, device="cpu")
    t_enc, emb = clock(lambda: encode_corpus(dense_model, ds.corpus, os.path.join(root, "dense-embeddings"),
                                             vectors_key(ds.corpus, MODEL, dense_model), progress=False))
    t_idx, dense = clock(lambda: DenseIndex.from_embeddings(emb, ids, "flat", os.path.join(root, "dense-flat"),
                                                                   progress=False))
    dense.encoder = dense_model
    qv = encode_texts(dense_model, texts, "query")
    row("dense flat (MiniLM)", t_enc, t_idx, os.path.join(root, "dense-flat"),
        lambda: dense.search_vectors(qv, args.k), lambda: dense.search(ds.queries, args.k),
        f"{dense_model.max_seq_length} tokens")

    # ColBERT: one encoding, two token indexes
    torch.manual_seed(0)
    colbert = load_colbert(MODEL, device="cpu")
    encoding = os.path.join(root, "colbert-encoding")
    t_enc, (parts, lengths) = clock(lambda: encode_tokens(colbert, ds.corpus, encoding, {"model": MODEL}, progress=False))
    q_tokens = colbert.encode_query(texts, convert_to_numpy=True)
    for kind in ["ivfpq", "flat"]:
        path = os.path.join(root, f"colbert-{kind}")
        t_idx, index = clock(lambda: ColbertIndex.from_parts(parts, lengths, ids, path, kind, {"model": MODEL},
                                                        progress=False))
        index.encoder, m = colbert, index.meta  # the model whose (untrained) projection encoded the documents
        row(f"ColBERT {kind} + MaxSim (MiniLM, untrained projection)", t_enc, t_idx, path,
            lambda: index.search_embeddings(q_tokens, args.k), lambda: index.search(ds.queries, args.k),
            f"{m['tokens']} tokens ({m['tokens_per_doc']:.0f}/doc), token_k 64, {m['params'] or ''}".strip())

    # SPLADE-tiny, Lucene impact index
    splade = load_splade("splade-tiny", device="cpu")
    path = os.path.join(root, "splade")
    key = SpladeIndex.key(ds.corpus, "splade-tiny", splade, None, {})
    t_enc, _ = clock(lambda: encode_vectors(splade, ds.corpus, path + ".vectors", key, progress=False))
    t_idx, index = clock(lambda: SpladeIndex.build(ds.corpus, path, key, splade, progress=False))  # reuses the encoding
    index.encoder = splade
    weights = dict(zip(qids, sparse_weights(splade, texts, "query")))
    q_terms = np.mean([len(w) for w in weights.values()])
    row("SPLADE-tiny, Lucene impact", t_enc, t_idx, path, lambda: index.search_weights(weights, args.k),
        lambda: index.search(ds.queries, args.k),
        f"{index.meta['doc_terms']:.0f} terms/doc, {q_terms:.0f} terms/query, {splade.max_seq_length} tokens")

    notes = [f"SciFact: {len(ids)} documents, {len(qids)} test queries, top {args.k}. encode s: the corpus through "
             "the model (CPU); index s: the index from the encoding; size: the index folder on disk (ColBERT: float16 "
             "token embeddings + FAISS token index + offsets). QPS search: queries encoded beforehand (best of 3); "
             "end-to-end: query encoding included. The ColBERT model has an untrained projection (speed and size "
             "only; see docs/results.md for trained ColBERT and SPLADE effectiveness)."]
    publish_benchmark("bench-late-sparse", "benchmarks/bench_late_sparse.py", ["irdistill", "torch",
                      "sentence-transformers", "faiss-cpu", "faiss-gpu", "pyserini", "numpy"], notes, rows, args.write)


if __name__ == "__main__":
    sys.exit(main())
