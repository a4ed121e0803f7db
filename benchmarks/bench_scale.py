"""Scale: every stage of the pipeline on synthetic corpora of 10k, 100k and 1M documents, its time, its peak memory
and how both grow with the corpus.

The corpora have real word statistics: words drawn with their frequencies in the shared collections (SciFact,
Cranfield, XQuAD English), documents as long as SciFact's (title and text lengths sampled from it). Each size has
n/100 training queries (so n/100 x 100 = n candidate pairs: the pair stages grow with the corpus too) and 1,000 test
queries for search; a query is a handful of words of one document, its one relevant document. The encoder is a tiny
BERT (2 layers, 64 dimensions, MiniLM's tokenizer, random weights built from a config, 32 tokens), so the pipeline is
measured, not a model. Every stage runs in a fresh process (``--stage``): its time excludes the imports, its memory is
the process's peak RSS (VmHWM: imports, the JVM and mapped pages read included). Finished stages are kept in
``<work>/results.json`` and their outputs on disk, so a killed run resumes; ``--redo STAGE`` measures one again.

    nice -n 10 python benchmarks/bench_scale.py [--sizes 10000,100000,1000000] [--work .cache/bench-scale]
        [--redo encode] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(ROOT, "..", "shared", "datasets")
DIM, MAX_TOKENS, TEST_QUERIES, DEPTH = 64, 32, 1000, 100
KINDS = ("flat", "hnsw", "ivfpq")

STAGES = {  # name: what it measures
    "baseline": "imports only: torch, sentence-transformers, faiss, the JVM (pyserini)",
    "load-parse": "load, no store: parse corpus.jsonl into memory (the path before issue 16)",
    "load-store": "load, first time: parse and write the store",
    "load": "load again: map the store, fingerprint, every id",
    "bm25-index": "BM25 index (Lucene through pyserini)",
    "encode": "encode the corpus (tiny model)",
    **{f"faiss-{k}": f"FAISS {k} build from the encoded corpus" for k in KINDS},
    **{f"search-{k}": f"search {k}, per query (k=100)" for k in (*KINDS, "bm25")},
    "candidates": "BM25 candidates, top 100 + positives, of n/100 queries, to Parquet",
    "score": "teacher scoring into the cache (bi-encoder, tiny model), n pairs",
    "cache-read": "cache read, a block of 10,000 queries at a time",
    "examples": "training examples (7 negatives) + every row's texts read by id",
}
PER_QUERY = {f"search-{k}" for k in (*KINDS, "bm25")}


# synthetic data -------------------------------------------------------------------------------------------------------
def statistics(work: str) -> dict:
    """Vocabulary and frequencies, SciFact's title/text/query lengths in words (kept in ``<work>/statistics.npz``)."""
    path = os.path.join(work, "statistics.npz")
    if not os.path.exists(path):
        counts: dict[str, int] = {}
        words = re.compile(r"[a-z0-9]+")
        for name in ("scifact/corpus.jsonl", "cranfield/corpus.jsonl", "xquad-para-en-de/corpus.en.jsonl"):
            with open(os.path.join(SHARED, name), encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    for w in words.findall(f"{rec.get('title', '')} {rec['text']}".lower()):
                        counts[w] = counts.get(w, 0) + 1
        with open(os.path.join(SHARED, "scifact/corpus.jsonl"), encoding="utf-8") as f:
            docs = [json.loads(line) for line in f]
        with open(os.path.join(SHARED, "scifact/queries.jsonl"), encoding="utf-8") as f:
            queries = [json.loads(line)["text"] for line in f]
        vocab = sorted(counts, key=lambda w: -counts[w])
        np.savez(path, vocab=np.array(vocab), freq=np.array([counts[w] for w in vocab], np.float64),
                 title=np.array([len(words.findall(d["title"].lower())) for d in docs]),
                 text=np.array([len(words.findall(d["text"].lower())) for d in docs]),
                 query=np.array([max(1, len(words.findall(q.lower()))) for q in queries]))
    stats = np.load(path)
    return {k: stats[k] for k in stats.files}


def generate(folder: str, n: int, stats: dict, seed: int = 0) -> None:
    """A BEIR folder of ``n`` documents, n/100 training and 1,000 test queries (each the words of one document)."""
    if os.path.exists(os.path.join(folder, "qrels", "test.tsv")):
        return
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab, cdf = stats["vocab"].astype(object), np.cumsum(stats["freq"] / stats["freq"].sum())
    n_train, n_test = max(1, n // 100), TEST_QUERIES
    positives = rng.choice(n, n_train + n_test, replace=False)
    asked = dict(zip(positives.tolist(), range(len(positives))))
    qwords: list[str] = [""] * len(positives)
    with open(os.path.join(folder, "corpus.jsonl.tmp"), "w", encoding="utf-8") as f:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            pick = rng.integers(0, len(stats["text"]), m)
            lt, lx = stats["title"][pick], stats["text"][pick]
            words = vocab[np.minimum(np.searchsorted(cdf, rng.random(int(lt.sum() + lx.sum()))), len(vocab) - 1)]
            at = 0
            for i in range(m):
                title, text = words[at : at + lt[i]], words[at + lt[i] : at + lt[i] + lx[i]]
                at += lt[i] + lx[i]
                if start + i in asked:
                    body = np.concatenate([title, text])
                    size = min(len(body), int(rng.choice(stats["query"])))
                    qwords[asked[start + i]] = " ".join(rng.choice(body, size, replace=False)) if size else "empty"
                f.write(json.dumps({"_id": f"doc{start + i}", "title": " ".join(title), "text": " ".join(text)}) + "\n")
    os.replace(os.path.join(folder, "corpus.jsonl.tmp"), os.path.join(folder, "corpus.jsonl"))
    with open(os.path.join(folder, "queries.jsonl"), "w", encoding="utf-8") as f:
        for j, text in enumerate(qwords):
            f.write(json.dumps({"_id": f"q{j}", "text": text}) + "\n")
    for split, rows in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        with open(os.path.join(folder, "qrels", f"{split}.tsv"), "w") as f:
            f.write("query-id\tcorpus-id\tscore\n" + "".join(f"q{j}\tdoc{positives[j]}\t1\n" for j in rows))


def tiny_model(folder: str) -> str:
    """A 2-layer, 64-dim BERT sentence encoder with random weights and MiniLM's tokenizer, reading 32 tokens."""
    st = os.path.join(folder, "st")
    if os.path.exists(os.path.join(st, "modules.json")):
        return st
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irdistill.models import packaged_path

    tokenizer = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=DIM, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * DIM, max_position_embeddings=512)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(os.path.join(folder, "bert"))
    tokenizer.save_pretrained(os.path.join(folder, "bert"))
    word = models.Transformer(os.path.join(folder, "bert"), max_seq_length=MAX_TOKENS)
    SentenceTransformer(modules=[word, models.Pooling(DIM, "mean"), models.Normalize()], device="cpu").save(st)
    return st


# stages (each in its own process) -------------------------------------------------------------------------------------
CPU = {"seconds": 0.0}  # CPU seconds (all threads, the JVM's too, and children) of the last timed stretch


def clock() -> tuple[float, float]:
    use = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return time.perf_counter(), sum(u.ru_utime + u.ru_stime for u in use)


def elapsed(start: tuple[float, float]) -> float:
    """Wall seconds since ``start``; the CPU seconds go to ``CPU``: on a shared machine they show the work itself."""
    wall, cpu = clock()
    CPU["seconds"] = cpu - start[1]
    return wall - start[0]

def stage(name: str, data: str, out: str, model: str) -> dict:
    """Run one stage; returns its seconds and counts (the caller adds the peak RSS)."""
    from irdistill.data import load_dataset

    def index_path(kind):
        return os.path.join(out, "indexes", "bm25" if kind == "bm25" else f"dense/{kind}")

    if name == "baseline":
        import faiss  # noqa: F401
        import sentence_transformers  # noqa: F401

        from irdistill.index.java import start_jvm

        start_jvm()
        return {"seconds": 0.0}
    if name.startswith("load"):
        from irdistill.data import Corpus

        path = os.path.join(data, "corpus.jsonl")
        if name == "load-parse":  # a hard link elsewhere: no store, no fingerprint kept for it
            link = os.path.join(out, "parse", "corpus.jsonl")
            shutil.rmtree(os.path.dirname(link), ignore_errors=True)
            os.makedirs(os.path.dirname(link))
            os.link(path, link)
            path = link
        if name == "load-store":
            shutil.rmtree(os.path.join(data, ".corpus.jsonl.store"), ignore_errors=True)
        start = clock()
        corpus = Corpus.from_jsonl(path)
        corpus.fingerprint(), len(corpus.ids)
        seconds = elapsed(start)
        if name == "load-parse":
            shutil.rmtree(os.path.dirname(path))
        return {"seconds": seconds, "stored": corpus._store is not None}
    if name == "bm25-index":
        from irdistill.index.base import open_index

        ds = load_dataset(data, "test")
        shutil.rmtree(index_path("bm25"), ignore_errors=True)
        start = clock()
        open_index(ds, "bm25", index=index_path("bm25"), progress=False)
        return {"seconds": elapsed(start)}
    if name == "encode":
        from irdistill.index.encode import embeddings_folder, encode_corpus, vectors_key
        from irdistill.models import load_sentence_transformer

        ds, encoder = load_dataset(data, "test"), load_sentence_transformer(model)
        key = vectors_key(ds.corpus, model, encoder)
        folder = embeddings_folder(index_path("flat"), key)  # where the faiss stages' indexes find it
        shutil.rmtree(folder, ignore_errors=True)
        start = clock()
        encode_corpus(encoder, ds.corpus, folder, key, progress=False)
        return {"seconds": elapsed(start)}
    if name.startswith("faiss-"):
        from irdistill.index.base import open_index
        from irdistill.models import load_sentence_transformer

        kind, ds, encoder = name.split("-")[1], load_dataset(data, "test"), load_sentence_transformer(model)
        shutil.rmtree(index_path(kind), ignore_errors=True)
        start = clock()
        found = open_index(ds, "dense", model, kind, index=index_path(kind), progress=False, encoder=encoder)
        return {"seconds": elapsed(start), "params": found.meta["params"]}
    if name.startswith("search-"):
        from irdistill.index.base import load_index

        kind, ds = name.split("-")[1], load_dataset(data, "test")
        index = load_index(index_path(kind), model if kind != "bm25" else None)
        index.search(dict(list(ds.queries.items())[:10]), DEPTH)  # warm: JVM, query encoder
        start = clock()
        run = index.search(ds.queries, DEPTH)
        seconds = elapsed(start)
        found = {(q, d) for q, docs in ds.qrels.items() for d in docs} & set(zip(run["qid"], run["docid"]))
        return {"seconds": seconds / len(ds.queries), "queries": len(ds.queries),
                "recall@100": round(len(found) / len(ds.queries), 4)}
    if name == "candidates":
        from irdistill.data import write_run
        from irdistill.index.base import candidates

        ds = load_dataset(data, "train")
        start = clock()
        run = candidates(ds, "bm25", k=DEPTH, positives=True, index=index_path("bm25"), progress=False)
        write_run(run, os.path.join(out, "candidates.parquet"))
        return {"seconds": elapsed(start), "queries": len(ds.queries), "pairs": len(run)}
    if name == "score":
        from irdistill.cache import ScoreCache
        from irdistill.teachers.score import score_run

        ds = load_dataset(data, "train")
        shutil.rmtree(os.path.join(out, "cache"), ignore_errors=True)
        start = clock()
        stats = score_run(f"bi-encoder:{model}", os.path.join(out, "candidates.parquet"), ds,
                          ScoreCache(os.path.join(out, "cache")), progress=False)
        return {"seconds": elapsed(start), "pairs": stats.pairs}
    from irdistill.cache import ScoreCache

    cache = ScoreCache(os.path.join(out, "cache"))
    (teacher,) = cache.teachers()
    if name == "cache-read":
        start = clock()
        pairs = sum(len(block) for block in cache.read_blocks(teacher))
        return {"seconds": elapsed(start), "pairs": pairs}
    if name == "examples":
        from irdistill.training import ExampleConfig, as_hf_dataset, build_examples

        ds = load_dataset(data, "train")
        start = clock()
        examples = build_examples(ds, cache, ExampleConfig(teacher=teacher, negatives=7))
        rows = as_hf_dataset(examples, ds)
        texts = sum(len(rows[i : i + 64]["query"]) for i in range(0, len(rows), 64))
        return {"seconds": elapsed(start), "examples": texts}
    raise SystemExit(f"unknown stage {name!r}")


def run_stage(name: str, size: int, work: str, model: str) -> dict:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "IRDISTILL_STORE_MIN_BYTES": str(1 << 62 if name == "load-parse" else 1)}
    out = os.path.join(work, str(size))
    cmd = [sys.executable, os.path.abspath(__file__), "--stage", name, "--data", os.path.join(out, "data"),
           "--out", out, "--model", model]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"stage {name} at {size:,} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_mb() -> float:
    """This process's peak RSS in MB: VmHWM where /proc has it. ``ru_maxrss`` also counts the parent's peak at the
    fork (Linux carries it across exec), here the ~600 MB of the driver that built the model."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# the table ------------------------------------------------------------------------------------------------------------
def exponent(a: float, b: float, n1: int, n2: int) -> float:
    return math.log(b / a) / math.log(n2 / n1) if a > 0 and b > 0 else float("nan")


def table(results: dict, sizes: list[int]) -> tuple[list[dict], list[str]]:
    rows, checks = [], []
    big, prev = sizes[-1], sizes[-2] if len(sizes) > 1 else None
    budget = 4096 + big * DIM * 4 / 2**20
    for name in STAGES:
        got = [results.get(f"{n}/{name}") for n in sizes]
        if not any(got):
            continue
        row = {"stage": name}
        for n, r in zip(sizes, got):
            seconds = r["seconds"] * (1000 if name in PER_QUERY else 1) if r else None
            row[f"{label(n)} time"] = "" if r is None else f"{seconds:.3g}"  # one column name: the table keeps row 0's
        for (n1, r1), (n2, r2) in zip(zip(sizes, got), zip(sizes[1:], got[1:])):
            e = exponent(r1["seconds"], r2["seconds"], n1, n2) if r1 and r2 else float("nan")
            row[f"exp {label(n1)}-{label(n2)}"] = "" if math.isnan(e) else f"{e:.2f}"
            both = r1 and r2 and "cpu" in r1 and "cpu" in r2
            c = exponent(r1["cpu"], r2["cpu"], n1, n2) if both else float("nan")
            row[f"cpu exp {label(n1)}-{label(n2)}"] = "" if math.isnan(c) else f"{c:.2f}"
            if n2 != big or not (r1 and r2) or name in PER_QUERY or name == "baseline":
                continue
            work = e if math.isnan(c) else c  # the verdict reads CPU seconds where the run has them
            if work > 1.1:
                checks.append(f"FAIL: {name} grows with exponent {work:.2f} > 1.1 from {label(prev)} to {label(big)}"
                              + ("" if math.isnan(c) else f" (CPU seconds; wall {e:.2f})"))
            elif e > 1.1:
                checks.append(f"NOTE: {name}'s wall time grows with exponent {e:.2f} from {label(prev)} to {label(big)}, "
                              f"its CPU time with {c:.2f}: the machine's load changed between the two")
        for n, r in zip(sizes, got):
            row[f"{label(n)} MB"] = "" if r is None else f"{r['peak_mb']:.0f}"
        if got[-1] and got[-1]["peak_mb"] > budget:
            checks.append(f"FAIL: {name} peaks at {got[-1]['peak_mb']:.0f} MB > {budget:.0f} MB at {label(big)}")
        rows.append(row)
    if len(sizes) > 1 and not any(c.startswith("FAIL") for c in checks):
        checks.append(f"PASS: every stage (search per query excepted) grows with an exponent <= 1.1 in CPU seconds (in "
                      f"wall seconds too, except where a NOTE says otherwise) from {label(prev)} "
                      f"to {label(big)}; every peak at {label(big)} is under 4 GB + the vectors ({budget:.0f} MB)")
    return rows, checks


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--work", default=os.path.join(ROOT, ".cache", "bench-scale"))
    ap.add_argument("--redo", action="append", default=[], help="measure this stage again (every size)")
    ap.add_argument("--write")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        sys.path.insert(0, ROOT)
        result = stage(args.stage, args.data, args.out, args.model)
        result["cpu"] = CPU["seconds"] / result.get("queries", 1) if args.stage in PER_QUERY else CPU["seconds"]
        result["peak_mb"] = peak_mb()
        print(json.dumps(result))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    os.makedirs(args.work, exist_ok=True)
    store = os.path.join(args.work, "results.json")
    results = {}
    if os.path.exists(store):
        with open(store, encoding="utf-8") as f:
            results = json.load(f)
    stats, model = statistics(args.work), tiny_model(os.path.join(args.work, "model"))
    for n in sizes:
        start = time.perf_counter()
        generate(os.path.join(args.work, str(n), "data"), n, stats)
        print(f"{n:,} documents ready ({time.perf_counter() - start:.0f} s)", flush=True)
        for name in STAGES:
            if f"{n}/{name}" in results and name not in args.redo:
                continue
            results[f"{n}/{name}"] = run_stage(name, n, args.work, model)
            print(f"{label(n)} {name}: {json.dumps(results[f'{n}/{name}'])}", flush=True)
            with open(store + ".tmp", "w") as f:
                json.dump(results, f, indent=1)
            os.replace(store + ".tmp", store)
    rows, checks = table(results, sizes)
    notes = [f"Stages, each in a fresh process: {'; '.join(f'{k}: {v}' for k, v in STAGES.items())}.",
             "time: wall seconds (search: milliseconds per query); exp: the growth exponent log(t2/t1)/log(n2/n1); "
             "cpu exp: the same for the stage's CPU seconds (every thread and child), which the load of other jobs "
             "does not inflate; "
             "MB: the stage process's peak RSS (imports, the JVM, pages of mapped files read included).",
             "Every corpus is kept in the on-disk store (IRDISTILL_STORE_MIN_BYTES=1) except in load-parse. "
             "Run under nice -n 10 on 2 cores that other jobs shared part of the time: wall times are noisy, CPU "
             "seconds much less so.",
             *checks]
    from irdistill.experiment import publish_benchmark

    publish_benchmark("bench-scale", "benchmarks/bench_scale.py", ["pyarrow", "faiss-cpu", "pyserini", "torch",
                      "sentence-transformers"], notes, rows, args.write)


if __name__ == "__main__":
    main()
