"""Cross-encoder teacher throughput through ``irdistill score`` (cache writes included) beside a plain
``CrossEncoder.predict`` over the same pairs, in one run; then faster variants (bf16, int8) with their agreement.

No trained cross-encoder ships offline, so the model is all-MiniLM-L6-v2's encoder with a fresh 1-logit head
(scaled to unit variance, seed 0): throughput does not depend on training, and agreement measures numerical fidelity.

    python benchmarks/bench_teacher.py [--queries 20 --depth 30 --max-length 256] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset
from irdistill.index import open_index
from irdistill.models import packaged_path
from irdistill.experiment import publish_benchmark
from irdistill.teachers import score_run
from irdistill.teachers.cross_encoder import CrossEncoderTeacher

HERE = os.path.dirname(os.path.abspath(__file__))


def make_cross_encoder(folder: str, max_length: int) -> str:
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    ce = CrossEncoder(packaged_path("all-MiniLM-L6-v2"), num_labels=1, max_length=max_length, device="cpu")
    head = [m for n, m in ce.named_modules() if n.endswith("classifier")][0]
    torch.nn.init.normal_(head.weight, std=1 / head.weight.shape[1] ** 0.5)
    ce.save(folder)
    return folder


def agreement(run_scores: dict, ref: dict) -> tuple[float, float]:
    """Mean top-10 overlap per query, and Spearman's rho over all pairs, against the reference scores."""
    from scipy.stats import spearmanr

    keys = sorted(ref)
    rho = spearmanr([ref[k] for k in keys], [run_scores[k] for k in keys]).statistic
    overlaps = []
    for q in {k[0] for k in keys}:
        docs = [k for k in keys if k[0] == q]
        top = lambda s: {k for k in sorted(docs, key=lambda k: -s[k])[:10]}
        overlaps.append(len(top(ref) & top(run_scores)) / 10)
    return float(np.mean(overlaps)), float(rho)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--write", help="also write the table into this Markdown file")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count())

    ds = load_dataset(args.dataset, "test")
    ds.queries = dict(list(ds.queries.items())[: args.queries])
    work = tempfile.mkdtemp(prefix="bench-teacher-")
    run = open_index(ds, "bm25", index=os.path.join(work, "bm25")).search(ds.queries, args.depth)
    pairs = [(ds.queries[q], t) for q, t in zip(run.qid, ds.corpus.texts(run.docid.tolist()))]
    keys = list(zip(run.qid, run.docid))
    model_dir = make_cross_encoder(os.path.join(work, "ce"), args.max_length)

    plain = CrossEncoderTeacher(model_dir, args.max_length, args.batch_size, device="cpu")
    plain.model.predict(pairs[:32], batch_size=args.batch_size)  # warm-up
    t = time.perf_counter()
    ref_scores = plain.model.predict(pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity())
    t_plain = time.perf_counter() - t
    ref = dict(zip(keys, map(float, ref_scores)))
    rows = [{"path": "CrossEncoder.predict (baseline)", "pairs/s": len(pairs) / t_plain, "speed-up": 1.0,
             "top-10 overlap": 1.0, "Spearman": 1.0, "teacher calls": len(pairs)}]

    variants = [("irdistill score, fp32", {}), ("irdistill score, bf16", {"dtype": "bfloat16"}),
                ("irdistill score, int8 dynamic", {"quantize": "int8"})]
    for label, opts in variants:
        teacher = CrossEncoderTeacher(model_dir, args.max_length, args.batch_size, device="cpu", **opts)
        teacher.model.predict(pairs[:32], batch_size=args.batch_size)
        cache = ScoreCache(os.path.join(work, "cache"))
        t = time.perf_counter()
        stats = score_run(teacher, run, ds, cache, progress=False)
        secs = time.perf_counter() - t
        got = {(q, d): float(s) for q, d, s in cache.read(stats.key).itertuples(index=False)}
        overlap, rho = agreement(got, ref)
        rows.append({"path": label, "pairs/s": len(pairs) / secs, "speed-up": t_plain / secs, "top-10 overlap": overlap,
                     "Spearman": rho, "teacher calls": stats.pairs})
        if not opts:  # the same command again: everything is cached
            t = time.perf_counter()
            again = score_run(teacher, run, ds, cache, progress=False)
            rows.append({"path": "irdistill score, fp32, second run", "pairs/s": float("nan"),
                         "speed-up": t_plain / (time.perf_counter() - t), "top-10 overlap": 1.0, "Spearman": 1.0,
                         "teacher calls": again.pairs})

    publish_benchmark("bench-teacher", "benchmarks/bench_teacher.py",
                      ("irdistill", "torch", "sentence-transformers", "transformers", "pyarrow"),
                      [f"{len(pairs)} pairs: {args.queries} SciFact test queries x BM25 top {args.depth}; max_length "
                       f"{args.max_length}, batch {args.batch_size}; agreement is against the baseline's scores"],
                      rows, args.write)


if __name__ == "__main__":
    main()
