"""ANN at scale: FAISS HNSW and IVF-PQ, with irdistill's default parameters, against exact (flat) search on one
million 384-dimensional vectors, in one run: build time, QPS and recall@10 relative to exact search.

The vectors are not i.i.d. noise but a Gaussian mixture shaped like real sentence embeddings: the mean and covariance
are those of all-MiniLM-L6-v2 embeddings of the first ``--calibrate`` SciFact documents, split into ``--clusters``
topic centres (half the variance between topics, half within), then normalised as MiniLM's are. Queries are further
draws from the same topics. Vectors, queries and built indexes are cached under ``--root`` (git-ignored), so a rerun
searches again without rebuilding (``--rebuild`` builds again; the build time shown is the one measured at build).

    nice -n 10 python benchmarks/bench_ann.py [--n 1000000] [--queries 2000] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from irdistill.data import load_dataset
from irdistill.data.io import atomic_path
from irdistill.index import DenseIndex, encode_texts
from irdistill.index.dense import default_params
from irdistill.index.encode import Embeddings
from irdistill.experiment import publish_benchmark

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SEARCH_PARAMS = ("ef_search", "nprobe")


def calibration(dataset: str, docs: int, root: str) -> np.ndarray:
    """MiniLM embeddings of the first ``docs`` documents of ``dataset`` (cached)."""
    path = os.path.join(root, f"calibration-{docs}.npy")
    if not os.path.exists(path):
        from irdistill.models import load_sentence_transformer

        corpus = load_dataset(dataset, "test").corpus
        x = encode_texts(load_sentence_transformer(MODEL, device="cpu"), corpus.texts(stop=docs), "document")
        os.makedirs(root, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, x)
    return np.load(path)


class Mixture:
    """``clusters`` centres ``mu + sqrt(between) * N(0, S)``; a draw is a centre plus ``sqrt(1 - between) * N(0, S)``,
    normalised; ``mu`` and ``S`` are the mean and covariance of the calibration vectors."""

    def __init__(self, x: np.ndarray, clusters: int, between: float = 0.5, seed: int = 0):
        self.mu = x.mean(0)
        lam, vec = np.linalg.eigh(np.cov(x, rowvar=False))
        self.basis = (vec * np.sqrt(np.clip(lam, 0, None))).T.astype(np.float32)  # z @ basis ~ N(0, S)
        self.between = between
        rng = np.random.default_rng(seed)
        self.centres = self.mu + np.sqrt(between) * rng.standard_normal((clusters, len(self.mu)), np.float32) @ self.basis

    def draw(self, n: int, rng) -> np.ndarray:
        labels = rng.integers(len(self.centres), size=n)
        x = self.centres[labels] + np.sqrt(1 - self.between) * rng.standard_normal((n, len(self.mu)), np.float32) @ self.basis
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def vectors(mix: Mixture, n: int, folder: str, config: dict, chunk: int = 1 << 16) -> Embeddings:
    """``n`` draws written as an Embeddings folder (chunk ``i`` from seed ``1000 + i``), reused when ``config`` matches."""
    meta = {"model": "synthetic", "corpus": json.dumps(config, sort_keys=True), "documents": n, "chunk": chunk,
            "dim": len(mix.mu), "normalized": True}
    meta_path = os.path.join(folder, "meta.json")
    if os.path.exists(meta_path) and json.load(open(meta_path)) == meta:
        return Embeddings(folder)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    for i, start in enumerate(range(0, n, chunk)):
        with atomic_path(os.path.join(folder, f"part-{i:05d}.npy")) as tmp, open(tmp, "wb") as f:
            np.save(f, mix.draw(min(chunk, n - start), np.random.default_rng(1000 + i)))
    with atomic_path(meta_path) as tmp, open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    return Embeddings(folder)


def built(emb: Embeddings, ids: list[str], kind: str, folder: str, rebuild: bool) -> tuple[DenseIndex, float]:
    """The index of ``kind`` with default parameters, loaded when already built with the same build parameters for
    these vectors (the search parameters, efSearch and nprobe, are set from the current defaults)."""
    stamp = os.path.join(folder, "build.json")
    params = default_params(kind, len(emb), emb.dim)
    want = {"corpus": emb.meta["corpus"], "params": {k: v for k, v in params.items() if k not in SEARCH_PARAMS}}
    if not rebuild and os.path.exists(stamp):
        done = json.load(open(stamp))
        if {k: done.get(k) for k in want} == want:
            index = DenseIndex(os.path.join(folder, "index"))
            index.meta["params"] = params
            index._set_search_params()
            return index, done["seconds"]
    start = time.perf_counter()
    index = DenseIndex.from_embeddings(emb, ids, kind, os.path.join(folder, "index"), progress=False)
    seconds = time.perf_counter() - start
    with atomic_path(stamp) as tmp, open(tmp, "w") as f:
        json.dump({**want, "seconds": seconds}, f)
    return index, seconds


def qps(index: DenseIndex, queries: np.ndarray, k: int, repeat: int) -> tuple[float, np.ndarray]:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        _, rows = index.search_vectors(queries, k)
        best = min(best, time.perf_counter() - start)
    return len(queries) / best, rows


def recall(rows: np.ndarray, exact: np.ndarray) -> float:
    """Mean fraction of the exact top ``k`` found in the approximate top ``k``."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(rows, exact)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=4096)
    ap.add_argument("--calibrate", type=int, default=2000, help="SciFact documents whose embeddings shape the mixture")
    ap.add_argument("--kinds", default="flat,hnsw,ivfpq")
    ap.add_argument("--ef-search", default="64,128", help="extra HNSW efSearch values to show beside the default")
    ap.add_argument("--nprobe", default="", help="extra IVF-PQ nprobe values to show beside the default")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--root", default="indexes/bench-ann", help="cache of vectors and built indexes")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--write", help="also write the table into this Markdown file")
    args = ap.parse_args()
    import faiss

    calib = calibration(args.dataset, args.calibrate, args.root)
    config = {"calibrate": args.calibrate, "clusters": args.clusters, "between": 0.5, "seed": 0}
    mix = Mixture(calib, args.clusters)
    emb = vectors(mix, args.n, os.path.join(args.root, f"vectors-{args.n}"), config)
    queries = mix.draw(args.queries, np.random.default_rng(7))
    ids = [str(i) for i in range(args.n)]
    print(f"{args.n} vectors x {emb.dim}, {args.queries} queries, faiss {faiss.__version__}, "
          f"{faiss.omp_get_max_threads()} threads", flush=True)

    rows, exact = [], None
    for kind in args.kinds.split(","):
        index, build_s = built(emb, ids, kind, os.path.join(args.root, f"{kind}-{args.n}"), args.rebuild)
        params = dict(index.meta["params"])  # the sweep below changes the index's own
        sweep = {"hnsw": args.ef_search, "ivfpq": args.nprobe}.get(kind, "")
        settings = [None] + [int(v) for v in sweep.split(",") if v]
        for value in settings:
            if value is not None and kind == "hnsw":
                index.meta["params"]["ef_search"] = value  # search_vectors sets efSearch = max(ef_search, k)
            elif value is not None:
                faiss.extract_index_ivf(index.index).nprobe = value
            q, found = qps(index, queries, args.k, args.repeat)
            if kind == "flat":
                exact, base = found, q
            name = {"hnsw": "efSearch", "ivfpq": "nprobe"}.get(kind)
            label = f"{kind} (default)" if value is None else f"{kind}, {name} {value}"
            rows.append({"index": label, "params": "" if value is not None else (params or ""),
                         "build s": build_s if value is None else float("nan"),
                         "size MB": os.path.getsize(os.path.join(args.root, f"{kind}-{args.n}", "index", "index.faiss")) / 2**20,
                         "QPS": q, "x exact": q / base, f"recall@{args.k} vs exact": recall(found, exact)})
            print(rows[-1], flush=True)
        del index

    notes = [f"{args.n:,} vectors of {emb.dim} dims, {args.queries:,} queries, top {args.k}, all queries in one "
             f"search_vectors call (best of {args.repeat}); recall@{args.k}: the share of exact search's top {args.k} "
             "found. Vectors: a Gaussian mixture with the mean and covariance of all-MiniLM-L6-v2 embeddings of "
             f"{args.calibrate:,} SciFact documents, {args.clusters:,} topic centres (half the variance between "
             "topics, half within), unit length; queries: further draws from the same topics. Rows marked default "
             "use DenseIndex's default parameters for this size; efSearch and nprobe rows change only that search setting."]
    publish_benchmark("bench-ann", "benchmarks/bench_ann.py", ["irdistill", "faiss-cpu", "faiss-gpu", "numpy"], notes,
                      rows, args.write)


if __name__ == "__main__":
    sys.exit(main())
