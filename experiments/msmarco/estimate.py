"""What the MS MARCO recipe (run.sh) should cost on 1 and 8 GPUs, per stage: an extrapolation, not a measurement.

CPU stages (the store, BM25 indexing and search, the cache read, example building) take bench_scale's 1M-document
figures to MS MARCO's size along the growth exponent measured between 100k and 1M (never below 1: a stage that seemed
to grow slower than linearly is assumed linear). Their host memory follows the line through the 100k and 1M peaks.
GPU stages (encoding the corpus, the teacher's scoring, training) divide their FLOPs (gpu_check's formula
``2 P T + 4 L T^2 H`` a forward, 3x that a training step) by the GPU's bf16 peak times ``--utilisation``, an
assumed share of the peak until ``benchmarks/gpu_check.py`` has measured one; 8 GPUs divide the GPU stages by 8
(encoding and scoring shard with no communication; DDP training is taken as linear). Wherever a figure comes from an
assumption, the table's notes say which.

    python experiments/msmarco/estimate.py [--scale .cache/bench-scale/results.json] [--queries 50000]
        [--write docs/guide.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PASSAGES, DEV_QUERIES = 8_841_823, 6_980
MODELS = {  # name: (layers, hidden, intermediate) of the BERT-like encoders the recipe uses
    "all-MiniLM-L6-v2 (student)": (6, 384, 1536),
    "ms-marco-MiniLM-L6-v2 (teacher)": (6, 384, 1536),
}


def flops(layers: int, hidden: int, inter: int, tokens: int) -> float:
    """gpu_check's forward FLOPs: 2 x non-embedding parameters x tokens + 4 x layers x tokens^2 x hidden."""
    params = layers * (4 * hidden * hidden + 2 * hidden * inter)
    return 2.0 * params * tokens + 4.0 * layers * tokens**2 * hidden


def grow(results: dict, stage: str, n: float) -> tuple[float, float, float]:
    """(seconds at ``n``, the exponent used, host MB at ``n``) of a bench_scale stage, from its two largest sizes."""
    small, big = sorted({int(key.split("/")[0]) for key in results if key.endswith(f"/{stage}")})[-2:]
    a, b = results[f"{small}/{stage}"], results[f"{big}/{stage}"]
    e = max(1.0, math.log(b["seconds"] / a["seconds"]) / math.log(big / small))
    slope = (b["peak_mb"] - a["peak_mb"]) / (big - small)
    return b["seconds"] * (n / big) ** e, e, b["peak_mb"] + slope * (n - big)


def clock(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default=os.path.join(ROOT, ".cache", "bench-scale", "results.json"),
                    help="bench_scale.py's results.json (its two largest sizes: 100k and 1M)")
    ap.add_argument("--queries", type=int, default=50_000, help="training queries (run.sh's QUERIES)")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--negatives", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32, help="training batch per GPU (margin-mse.yaml)")
    ap.add_argument("--step-seconds", type=float, default=0.05, help="assumed least time of a training step")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--passage-tokens", type=int, default=128)
    ap.add_argument("--pair-tokens", type=int, default=256)
    ap.add_argument("--query-tokens", type=int, default=32)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak (H100 SXM: 989)")
    ap.add_argument("--utilisation", type=float, default=0.3, help="assumed share of the peak a stage reaches")
    ap.add_argument("--write", help="also write the table into this Markdown file")
    args = ap.parse_args()
    if not os.path.exists(args.scale):
        print(f"{args.scale}: no bench_scale results (run benchmarks/bench_scale.py first)", file=sys.stderr)
        sys.exit(2)
    with open(args.scale, encoding="utf-8") as f:
        scale = json.load(f)
    student, teacher = MODELS["all-MiniLM-L6-v2 (student)"], MODELS["ms-marco-MiniLM-L6-v2 (teacher)"]
    rate = args.peak_tflops * 1e12 * args.utilisation  # FLOP/s a GPU is assumed to sustain
    pairs = args.queries * (args.depth + 1)
    examples = args.queries * args.epochs
    vectors_mb = PASSAGES * args.dim * 4 / 2**20

    rows = []

    def cpu(stage: str, what: str, n: float, count: str, per: float = 1.0, extra_mb: float = 0.0):
        seconds, e, mb = grow(scale, stage, n)
        rows.append({"stage": what, "work": count, "runs on": "CPU", "1 GPU": clock(seconds * per),
                     "8 GPUs": clock(seconds * per), "host MB": f"{mb + extra_mb:,.0f}", "from": f"bench_scale, exp {e:.2f}"})

    def gpu(what: str, count: str, total_flops: float, host: str | None, n: float, source: str, floor: float = 0.0):
        """The FLOP time, or the host's time for the same work with bench_scale's tiny model (tokenising, batching,
        writing) when that is longer; either splits over 8 GPUs (one worker process each)."""
        seconds = max(total_flops / rate, floor)
        if host:
            floor = grow(scale, host, n)[0]
            source += f"; host floor {clock(floor)} (bench_scale {host})"
            seconds = max(seconds, floor)
        rows.append({"stage": what, "work": count, "runs on": "GPU", "1 GPU": clock(seconds), "8 GPUs": clock(seconds / 8),
                     "host MB": f"{grow(scale, host, n)[2]:,.0f}" if host else "", "from": source})

    cpu("load-store", "corpus store (first load)", PASSAGES, f"{PASSAGES:,} passages")
    cpu("bm25-index", "BM25 index (Lucene)", PASSAGES, f"{PASSAGES:,} passages")
    # candidates: bench_scale's run has n/100 queries on n documents; MS MARCO's has --queries on 8.8M
    per_query, e, mb = grow(scale, "candidates", PASSAGES)
    per_query /= PASSAGES / 100
    rows.append({"stage": "BM25 candidates, top 100", "work": f"{args.queries:,} queries", "runs on": "CPU",
                 "1 GPU": clock(per_query * args.queries), "8 GPUs": clock(per_query * args.queries),
                 "host MB": f"{mb:,.0f}", "from": f"bench_scale, exp {e:.2f}"})
    gpu("encode the corpus (student)", f"{PASSAGES:,} x {args.passage_tokens} tokens",
        PASSAGES * flops(*student, args.passage_tokens), "encode", PASSAGES, "FLOPs / (peak x utilisation)")
    cpu("faiss-flat", "FAISS flat index", PASSAGES, f"{PASSAGES:,} vectors")
    gpu("teacher scoring into the cache", f"{pairs:,} pairs x {args.pair_tokens} tokens",
        pairs * flops(*teacher, args.pair_tokens), "score", pairs, "FLOPs / (peak x utilisation)")
    cpu("cache-read", "cache read", pairs, f"{pairs:,} pairs")
    cpu("examples", "training examples", pairs, f"{pairs:,} pairs")
    per_example = 3 * (flops(*student, args.query_tokens) + (args.negatives + 1) * flops(*student, args.passage_tokens))
    gpu("training (InfoNCE + Margin-MSE)", f"{examples:,} examples x {args.negatives + 1} passages",
        examples * per_example, None, PASSAGES, f"3 x forward FLOPs / (peak x utilisation); at least "
        f"{args.step_seconds} s a step of {args.batch_size} (assumed)", examples / args.batch_size * args.step_seconds)
    search, e, mb = grow(scale, "search-flat", PASSAGES)
    rows.append({"stage": "exact search, dev/small (CPU FAISS)", "work": f"{DEV_QUERIES:,} queries", "runs on": "CPU",
                 "1 GPU": clock(search * DEV_QUERIES), "8 GPUs": clock(search * DEV_QUERIES),
                 "host MB": f"{mb + vectors_mb:,.0f}", "from": f"bench_scale per query, exp {e:.2f}"})

    notes = [
        "EXTRAPOLATED, not measured: no GPU and no MS MARCO here. "
        f"MS MARCO passage: {PASSAGES:,} passages; {args.queries:,} training queries x {args.depth} BM25 candidates "
        f"(+ the positive); {args.epochs} epoch of {args.negatives} negatives an example; {args.dim}-dim vectors "
        f"({vectors_mb:,.0f} MB as float32, held by the flat index and the search).",
        f"GPU stages assume {args.utilisation:.0%} of a {args.peak_tflops:g} TFLOP/s bf16 peak (H100 SXM) is reached; "
        "benchmarks/gpu_check.py measures the real share on a GPU. Encoding and scoring split into independent shards, "
        "so 8 GPUs take 1/8 of the time; DDP training is taken as linear too (an upper bound on the speed-up). "
        "Encoding and scoring take at least the host's time for the same work with bench_scale's tiny model "
        "(tokenising, batching, writing: a floor that a faster GPU does not lower), split over 8 worker processes.",
        "CPU stages run as on this 2-core machine (bench_scale's 1M figures, wall seconds) and do not speed up with GPUs; "
        "BM25 indexing and search use more threads on a bigger host. host MB: the stage's peak RSS, extrapolated along "
        "the line through its 100k and 1M peaks; it counts the corpus store's memory-mapped pages that the stage read "
        "(page cache the OS can drop, not heap) and the JVM's heap where Lucene runs.",
    ]
    sys.path.insert(0, ROOT)
    from irdistill.experiment import publish_benchmark

    publish_benchmark("msmarco-estimate", "experiments/msmarco/estimate.py", ["torch", "faiss-cpu", "pyserini"],
                      notes, rows, args.write)


if __name__ == "__main__":
    main()
