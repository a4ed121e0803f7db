"""Query generation: SmolLM2-135M-Instruct (the packaged GGUF, in-process through transformers) throughput by batch
size and dtype beside the model-free generators in the same run, then what each generator's queries look like on
SciFact and Cranfield passages: examples, lengths, duplicates, copies of the passage, and BM25 round-trip
consistency (the share of queries whose own passage BM25 ranks first / in the top 10 of the whole corpus).

    python benchmarks/bench_queries.py [--passages 8 --examples 10 --skip-speed --skip-quality]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from irdistill.data import load_dataset
from irdistill.evaluation.metrics import format_table
from irdistill.index import open_index
from irdistill.queries import (
    Filters, LLMQueries, SentenceQueries, SpanQueries, TitleQueries, copy_ratio, draw_examples, normalise, select_rows,
)
from irdistill.queries.generate import _docs
from irdistill.experiment import machine, versions
from irdistill.models.llm import TransformersLM

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "datasets")
SMOLLM = "smollm2-135m-instruct-gguf"


def timed(gen, docs, n, seed=0):
    """The queries, wall seconds and this process' CPU seconds (all threads): on a shared machine the CPU time is
    what a dedicated machine would need (divided by its cores), the wall time what this run took."""
    start, cpu = time.perf_counter(), time.process_time()
    out = gen.generate(docs, n, seed)
    return out, time.perf_counter() - start, time.process_time() - cpu


def speed(args, sci):
    docs = _docs(sci.corpus, select_rows(sci.corpus, args.passages, 0))
    rows = []
    for gen in (TitleQueries(), SentenceQueries(), SpanQueries()):
        all_docs = _docs(sci.corpus, list(range(len(sci.corpus))))
        _, sec, cpu = timed(gen, all_docs, 1)
        rows.append({"generator": gen.kind, "dtype": "", "batch": "", "threads": 1, "n": 1, "passages": len(all_docs),
                     "wall s": sec, "cpu s": cpu, "passages/s": len(all_docs) / sec,
                     "cpu s/passage": cpu / len(all_docs)})
    # (dtype, batch, n, stop, threads, prefix shared); one thread unless said: on a shared machine two OpenMP threads
    # spend their time waiting for each other (here: 10.9 CPU s/passage with 2 threads against 2.9 with 1)
    configs = [("float32", 1, 1, ("\n",), 1, True), ("float32", 8, 1, ("\n",), 1, False),
               ("float32", 8, 1, ("\n",), 1, True), ("float32", 16, 1, ("\n",), 1, True),
               ("float32", 8, 1, (), 1, True), ("float32", 8, 3, ("\n",), 1, True), ("float32", 8, 1, ("\n",), 2, True),
               ("bfloat16", 8, 1, ("\n",), 1, True)]
    lms = {}
    threads = torch.get_num_threads()
    for dtype, batch, n, stop, nthreads, share in configs:
        torch.set_num_threads(nthreads)
        if dtype not in lms:
            lms.clear()
            lms[dtype] = TransformersLM(SMOLLM, device="cpu", dtype=dtype)
        lm = lms[dtype]
        lm.min_shared_prefix = 16 if share else 10**9
        gen = LLMQueries(lm, "few-shot", temperature=0.7 if n > 1 else 0.0, max_tokens=48, stop=stop, batch_size=batch)
        prompt_tokens = statistics.mean(len(lm.tokenizer(p, add_special_tokens=False)["input_ids"])
                                        for p in lm._prompts(gen.chats(docs)))
        out, sec, cpu = timed(gen, docs, n)
        rows.append({"generator": f"llm few-shot{'' if stop else ' no-stop'}", "dtype": dtype, "batch": batch,
                     "threads": nthreads, "prefix shared": share, "n": n, "passages": len(docs), "prompt tokens": round(prompt_tokens),
                     "wall s": sec, "cpu s": cpu, "passages/s": len(docs) / sec, "cpu s/passage": cpu / len(docs)})
        print(rows[-1], "| e.g.", out[0], "| load", os.getloadavg()[0], flush=True)
    torch.set_num_threads(threads)
    return rows


def stats(name, docs, queries, index, k=10):
    """Length, duplicates, copy ratio, and BM25 round-trip consistency of one generator's queries."""
    flat = [(d, q) for d, qs in zip(docs, queries) for q in qs]
    nonempty = [(d, q) for d, q in flat if q]
    norms = [normalise(q) for _, q in nonempty]
    dup_doc = sum(len(qs) - len({normalise(q) for q in qs if q}) - sum(1 for q in qs if not q) for qs in queries)
    kept, dropped = Filters().apply([(f"{d.docid}-q{i}", d.docid, q) for d, qs in zip(docs, queries)
                                     for i, q in enumerate(qs)], {})
    c1 = c10 = 0
    if nonempty:
        run = index.search({str(i): q for i, (_, q) in enumerate(nonempty)}, k=k)
        top = run.groupby("qid")["docid"].apply(list).to_dict()
        c1 = sum(top.get(str(i), [None])[0] == d.docid for i, (d, _) in enumerate(nonempty)) / len(nonempty)
        c10 = sum(d.docid in top.get(str(i), []) for i, (d, _) in enumerate(nonempty)) / len(nonempty)
    words = [len(q.split()) for _, q in nonempty] or [0]
    return {"generator": name, "queries": len(flat), "empty": len(flat) - len(nonempty),
            "words mean": statistics.mean(words), "words max": max(words),
            "dup in doc": dup_doc / max(1, len(flat)), "dup in set": 1 - len(set(norms)) / max(1, len(norms)),
            "copy ratio": statistics.mean([copy_ratio(q, d.passage) for d, q in nonempty] or [0]),
            "kept (default filters)": len(kept) / max(1, len(flat)), "BM25 top1": c1, f"BM25 top{k}": c10}


def quality(args, sci, cran, work):
    lm = TransformersLM(SMOLLM, device="cpu", dtype="float32")
    tables = {}
    for name, ds, other in [("SciFact", sci, cran), ("Cranfield", cran, sci)]:
        index = open_index(ds, "bm25", index=os.path.join(work, f"bm25-{name}"), progress=False)
        docs = _docs(ds.corpus, select_rows(ds.corpus, args.examples, 1))
        variants = [
            ("title", TitleQueries(), 1), ("sentence (ICT)", SentenceQueries(), 1), ("span (crop)", SpanQueries(), 1),
            ("llm zero-shot greedy", LLMQueries(lm, "zero-shot", temperature=0), 1),
            ("llm question greedy", LLMQueries(lm, "question", temperature=0), 1),
            ("llm few-shot generic greedy", LLMQueries(lm, "few-shot", temperature=0), 1),
            (f"llm few-shot {'Cranfield' if other is cran else 'SciFact-train'} greedy",
             LLMQueries(lm, "few-shot", examples=draw_examples(other, 3, 0), temperature=0), 1),
            ("llm few-shot generic T0.7 n3", LLMQueries(lm, "few-shot", greedy_first=False, temperature=0.7), 3),
            ("llm few-shot generic T1.0 n3", LLMQueries(lm, "few-shot", greedy_first=False, temperature=1.0), 3),
            ("llm default n3 (greedy + 2 at T0.7)", LLMQueries(lm), 3),
        ]
        rows = []
        for label, gen, n in variants:
            out, sec, cpu = timed(gen, docs, n)
            rows.append({**stats(label, docs, out, index), "cpu s/passage": cpu / len(docs)})
            print(f"\n### {name}: {label} ({sec:.1f}s)")
            for d, qs in zip(docs, out):
                print(f"  [{d.docid}] {d.passage[:90]!r}")
                for q in qs:
                    print(f"      -> {q!r}")
        tables[name] = rows
    return tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=8, help="SciFact passages per throughput row")
    ap.add_argument("--examples", type=int, default=10, help="passages per collection in the quality tables")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the quality tables")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Machine: {machine()}\nVersions: {versions('torch', 'transformers', 'gguf')}\n"
          f"torch threads: {torch.get_num_threads()}, load average at start: {os.getloadavg()}", flush=True)
    sci = load_dataset(os.path.join(SHARED, "scifact"), "train")
    cran = load_dataset(os.path.join(SHARED, "cranfield"), "test")
    if not args.skip_speed:
        rows = speed(args, sci)
        print("\nThroughput (greedy unless n > 1; max 48 new tokens; SciFact passages cut to 160 words)\n```\n"
              + format_table(rows) + f"\n```\nload average after: {os.getloadavg()}", flush=True)
    if not args.skip_quality:
        with tempfile.TemporaryDirectory() as work:
            for name, rows in quality(args, sci, cran, work).items():
                print(f"\n{name}: {args.examples} passages (seed 1)\n```\n" + format_table(rows) + "\n```")
        print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
