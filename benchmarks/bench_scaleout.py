"""Scaling out: training examples/s with 1 and 2 processes (torchrun, gloo), teacher scoring pairs/s with 1 and 2
shards (two `irdistill score --shard i/2` processes at once), corpus encoding docs/s with 1 and 2 worker processes;
each pair measured in one run, on the same cores.

all-MiniLM-L6-v2 (the packaged copy) on SciFact: training on BM25 candidates of the train queries scored by the BM25
teacher (infonce + listwise-kl, in-batch negatives gathered across processes); scoring BM25 candidates of test queries
with the bi-encoder teacher; encoding the first documents of the corpus.

    python benchmarks/bench_scaleout.py [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def cores() -> int:
    return len(os.sched_getaffinity(0))


def launch(args: list[str], processes: int = 1, threads: int | None = None) -> subprocess.Popen:
    """``python <args>`` as one process, or ``processes`` under torchrun, each with ``threads`` threads (default: the
    cores split evenly between the processes)."""
    launcher = [sys.executable] + (["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
                                   if processes > 1 else [])
    threads = threads or max(1, cores() // processes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    log = tempfile.TemporaryFile()  # not a pipe: a chatty process would fill it and stall
    proc = subprocess.Popen(launcher + args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log
    return proc


def finish(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.wait() != 0:
            p.log.seek(0)
            raise RuntimeError(p.log.read().decode()[-3000:])


# training ------------------------------------------------------------------------------------------------------------
def train_worker(config: str, out: str) -> None:
    """Run in each process: train, timing the steps after the first; rank 0 writes the seconds and steps to ``out``."""
    from bench_training import Clock

    from irdistill.training import TrainConfig, train

    clock = Clock()
    train(TrainConfig.from_file(config), callbacks=[clock.callback], progress=False)
    if int(os.environ.get("RANK", 0)) == 0:
        with open(out, "w") as f:
            json.dump({"seconds": clock.end - clock.start, "steps": clock.steps}, f)


def bench_training(work: str, dataset: str, cache: str, teacher: str, batch: int, steps: int) -> list[dict]:
    """Rows for one process on all cores, one process on one core, and two processes on one core each."""
    rows = []
    for processes, threads in ((1, cores()), (1, 1), (2, max(1, cores() // 2))):
        name = f"train-{processes}x{threads}"
        cfg = {"output": os.path.join(work, name), "dataset": dataset, "cache": cache, "model": MODEL,
               "examples": {"teacher": teacher, "negatives": 3}, "loss": [{"name": "infonce"}, {"name": "listwise-kl"}],
               "batch_size": batch // processes, "max_steps": steps + 1, "save_steps": 10_000, "logging_steps": 1,
               "max_seq_length": 96, "precision": "fp32", "seed": 42}
        config, out = os.path.join(work, f"{name}.yaml"), os.path.join(work, f"{name}.json")
        with open(config, "w") as f:
            yaml.safe_dump(cfg, f)
        finish(launch([os.path.abspath(__file__), "--train-worker", config, out], processes, threads))
        timing = json.load(open(out))
        rows.append({"measure": f"training, {processes} process{'es' * (processes > 1)} x batch {batch // processes}, "
                                f"{threads} thread{'s' * (threads > 1)} each", "group": "training",
                     "per second": timing["steps"] * batch / timing["seconds"], "unit": "examples"})
    return rows


# scoring -------------------------------------------------------------------------------------------------------------
def score_processes(work: str, dataset: str, run: str, shards: int) -> float:
    """Seconds from starting ``shards`` ``irdistill score --shard i/shards`` processes at once until all are done."""
    cmd = ["-m", "irdistill", "score", "--teacher", "bi-encoder:" + MODEL, "--run", run, "--dataset", dataset,
           "--split", "test", "--cache", os.path.join(work, f"score-{shards}"), "--quiet"]
    start = time.perf_counter()
    finish(*(launch(cmd + (["--shard", f"{i}/{shards}"] if shards > 1 else []), threads=max(1, cores() // shards))
             for i in range(shards)))
    return time.perf_counter() - start


def bench_scoring(work: str, dataset: str, run: str, pairs: int) -> tuple[list[dict], float]:
    """Rows for 1 and 2 shards, and the seconds a process takes to score nothing (a rerun: start-up and cache reads)."""
    rows = [{"measure": f"scoring, {n} shard{'s' * (n > 1)} at once (start to finish)", "unit": "pairs",
             "group": "scoring", "per second": pairs / score_processes(work, dataset, run, n)} for n in (1, 2)]
    return rows, score_processes(work, dataset, run, 1)


# encoding ------------------------------------------------------------------------------------------------------------
def bench_encoding(work: str, corpus, batch_size: int) -> tuple[list[dict], str]:
    """Rows for 1 and 2 workers (encode_corpus, start to finish), and a note on the pool's start-up."""
    from irdistill.index import encode_corpus, vectors_key
    from irdistill.index.encode import worker_pool
    from irdistill.models import load_sentence_transformer

    model = load_sentence_transformer(MODEL, device="cpu")
    key = vectors_key(corpus, MODEL, model)
    rows, seconds = [], {}
    for workers in (1, 2):
        start = time.perf_counter()
        encode_corpus(model, corpus, os.path.join(work, f"encode-{workers}"), key, batch_size, chunk=128,
                      progress=False, workers=workers)
        seconds[workers] = time.perf_counter() - start
        rows.append({"measure": f"encoding, {workers} worker{'s' * (workers > 1)} (pool start included)",
                     "unit": "documents", "group": "encoding", "per second": len(corpus) / seconds[workers]})
    start = time.perf_counter()
    with worker_pool(model, 2):
        pass
    pool = time.perf_counter() - start
    return rows, (f"Encoding: the first {len(corpus)} SciFact documents (256 tokens max, batch {batch_size}) through "
                  f"encode_corpus, start to finish; starting and stopping a pool of 2 CPU workers alone took "
                  f"{pool:.1f} s (2 workers less that: {len(corpus) / max(seconds[2] - pool, 1e-9):.2f} documents/s).")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--train-queries", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="timed training steps (after one warm-up step)")
    ap.add_argument("--batch-size", type=int, default=8, help="training examples per step, over all processes")
    ap.add_argument("--score-queries", type=int, default=20)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--documents", type=int, default=384)
    ap.add_argument("--write")
    ap.add_argument("--train-worker", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train_worker:
        return train_worker(*args.train_worker)

    from irdistill.cache import ScoreCache
    from irdistill.data import load_dataset, write_run
    from irdistill.data.corpus import Corpus
    from irdistill.experiment import publish_benchmark
    from irdistill.index.base import candidates
    from irdistill.teachers import build_teacher, score_run

    work = tempfile.mkdtemp(prefix="bench-scaleout-")
    dataset = os.path.abspath(args.dataset)
    train_ds, test_ds = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    load = os.getloadavg()[0]

    run = candidates(train_ds, "bm25", k=args.candidates, positives=True, progress=False)
    run = run[run["qid"].isin(list(train_ds.qrels)[: args.train_queries])]
    cache = ScoreCache(os.path.join(work, "train-cache"))
    teacher = score_run(build_teacher({"kind": "bm25"}, train_ds), run, train_ds, cache, progress=False).key
    rows = bench_training(work, dataset, cache.folder, teacher, args.batch_size, args.steps)

    run = candidates(test_ds, "bm25", k=args.candidates, progress=False)
    run = run[run["qid"].isin(list(test_ds.qrels)[: args.score_queries])]
    write_run(run, os.path.join(work, "score-run.parquet"))
    scoring, score_start = bench_scoring(work, dataset, os.path.join(work, "score-run.parquet"), len(run))
    rows += scoring

    corpus = Corpus(test_ds.corpus.table.slice(0, args.documents))
    encoding, encoding_note = bench_encoding(work, corpus, 32)
    rows += encoding

    first = {}
    for r in rows:  # each measure against the first (one process, all cores) of its group
        r["ratio"] = r["per second"] / first.setdefault(r["group"], r["per second"])
    notes = [
        f"{cores()} cores; one process gets all of them (OMP_NUM_THREADS={cores()}; the ratio's baseline), two "
        "processes one each. "
        f"Load average (1 min) at the start and end of the run: {load:.1f}, {os.getloadavg()[0]:.1f} (other jobs "
        "share this machine, so the absolute figures are noisy).",
        "On 2 CPU cores a second process adds no compute: the ratios show the overheads of scaling out (gloo "
        "all-gather of embeddings and gradients, a second model load, worker start-up), not speed-ups. With N GPUs "
        "each process gets a device of its own; that case is not measured here (no GPU).",
        "When the load average is above the core count, as here, two effects of the machine's scheduling, not of "
        "irdistill, swamp the training overheads: a process with 2 threads loses time at every parallel region "
        "waiting for a thread that is not running (the 1-thread row is faster), and every runnable thread gets a "
        "share of the cores, so two 1-thread processes take two shares from the other jobs where one takes one.",
        f"Training: {args.steps} timed steps after a warm-up step, {args.batch_size} examples a step in all "
        f"(1 positive + 3 negatives, 96 tokens), infonce + listwise-kl with in-batch negatives gathered across "
        f"processes; the first {args.train_queries} train queries with positives, BM25 top {args.candidates} scored "
        "by the BM25 teacher.",
        f"Scoring: bi-encoder teacher ({MODEL}) on BM25 top {args.candidates} of {args.score_queries} test queries "
        f"({len(run)} pairs), each run into a fresh cache; start to finish, model loads included (a process that "
        f"scores nothing, a rerun on the full cache, took {score_start:.1f} s).",
        encoding_note,
    ]
    publish_benchmark("bench-scaleout", "benchmarks/bench_scaleout.py",
                      ("irdistill", "torch", "sentence-transformers", "transformers", "faiss-cpu"), notes,
                      [{k: r[k] for k in ("measure", "unit", "per second", "ratio")} for r in rows], args.write)


if __name__ == "__main__":
    main()
