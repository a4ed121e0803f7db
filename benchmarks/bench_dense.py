"""Dense retrieval speed on SciFact: encoding throughput and search QPS of flat / HNSW / IVF-PQ beside baselines.

Baselines, measured in the same run: plain ``SentenceTransformer.encode`` for encoding, exhaustive numpy search
(``queries @ docs.T`` + argpartition) for search.

    python benchmarks/bench_dense.py [--docs 1000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from irdistill.data import load_dataset
from irdistill.evaluation import evaluate_run, format_table
from irdistill.index import Embeddings, encode_texts, open_index
from irdistill.models import load_sentence_transformer
from irdistill.experiment import machine, timed, versions, write_section

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--docs", type=int, default=1000, help="documents encoded for the throughput rows")
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--write", help="also write the table into this Markdown file")
    args = ap.parse_args()

    ds = load_dataset(args.dataset, "test")
    model = load_sentence_transformer(args.model, device="cpu")
    texts = ds.corpus.texts(start=0, stop=args.docs)

    # encoding: irdistill (length-sorted chunks, written to disk) vs plain encode; one warm-up call first
    model.encode(texts[:64], batch_size=64)
    t_plain, plain = timed(lambda: model.encode(texts, batch_size=64, normalize_embeddings=True), repeat=1)
    t_ours, ours = timed(lambda: encode_texts(model, texts, "document", 64), repeat=1)
    agree = float(np.min(np.sum(plain * ours, 1)))
    enc_rows = [{"step": "encode (SentenceTransformer.encode)", "docs/s": args.docs / t_plain},
                {"step": "encode (irdistill encode_texts)", "docs/s": args.docs / t_ours}]

    # search: the full corpus, encoded once and cached under indexes/
    flat = open_index(ds, "dense", args.model, "flat", encoder=model, progress=False)
    vectors = np.concatenate(list(Embeddings(os.path.join(os.path.dirname(flat.path), flat.meta["embeddings"])).parts()))
    qids = list(ds.queries)
    qv = encode_texts(model, [ds.queries[q] for q in qids], "query")

    def numpy_search():
        s = qv @ vectors.T
        top = np.argpartition(-s, args.k, axis=1)[:, : args.k]
        return np.take_along_axis(top, np.argsort(-np.take_along_axis(s, top, 1), 1), 1)

    t_np, _ = timed(numpy_search)
    rows = [{"index": "numpy exhaustive (baseline)", "build s": 0.0, "size MB": vectors.nbytes / 2**20,
             "QPS": len(qv) / t_np, "nDCG@10": float("nan")}]
    for kind in ["flat", "hnsw", "ivfpq"]:
        t0 = time.perf_counter()
        index = open_index(ds, "dense", args.model, kind, encoder=model, rebuild=True, progress=False)
        build = time.perf_counter() - t0
        t_search, _ = timed(lambda: index.search_vectors(qv, args.k))
        ndcg = evaluate_run(ds.qrels, index.search(ds.queries, args.k), "ndcg@10")["ndcg@10"]
        size = os.path.getsize(os.path.join(index.path, "index.faiss")) / 2**20
        rows.append({"index": f"faiss {kind} {index.meta['params'] or ''}".strip(), "build s": build, "size MB": size,
                     "QPS": len(qv) / t_search, "nDCG@10": ndcg})

    text = "\n".join([
        f"Machine: {machine()}",
        f"Versions: {versions('irdistill', 'torch', 'sentence-transformers', 'faiss-cpu', 'faiss-gpu', 'numpy')}",
        f"Model: {args.model}; {args.docs} SciFact documents encoded (batch 64, max {model.max_seq_length} tokens); "
        f"lowest cosine between the two encodings: {agree:.6f}",
        "", "```", format_table(enc_rows), "```", "",
        f"Search: {len(qv)} SciFact test queries, top {args.k}, over {len(vectors)} documents (best of 3; "
        "build time excludes encoding)", "", "```", format_table(rows), "```",
    ])
    print(text)
    if args.write:
        write_section(args.write, "bench-dense", f"Command: `python benchmarks/bench_dense.py --write {args.write}`\n\n{text}")


if __name__ == "__main__":
    sys.exit(main())
