"""``irdistill``: a thin command line over the library. Bad input exits with code 2 and a one-line error."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import InputError

DEFAULT_METRICS = "ndcg@10,recall@100,mrr@10"


def _add_dataset(p, required=True, many=False):
    p.add_argument("--dataset", required=required, action="append" if many else "store",
                   help="BEIR folder, MS MARCO folder (collection.tsv) or ir_datasets id"
                        + ("; repeat it (or give a comma list) for one table over several" if many else ""))
    p.add_argument("--split", help="split (BEIR default: test; MS MARCO default: dev.small; ir_datasets: appended to the id)")


def _add_retriever(p):
    p.add_argument("--retriever", choices=["bm25", "dense", "colbert", "splade"], default="bm25")
    p.add_argument("--model", help="model (hub name or folder) for --retriever dense (a SentenceTransformer), colbert "
                                   "(a MultiVectorEncoder, or any BERT-like model to convert) or splade (a SparseEncoder "
                                   "or masked LM)")
    p.add_argument("--kind", choices=["flat", "hnsw", "ivfpq", "auto"],
                   help="FAISS index kind: dense flat (default), hnsw, ivfpq; colbert auto (default: flat under 100k "
                        "tokens, else ivfpq), flat, ivfpq")
    p.add_argument("--index", help="index folder (default: indexes/<dataset>/...)")
    p.add_argument("--rebuild", action="store_true", help="build the index again even if it exists")
    p.add_argument("--batch-size", type=int, help="encoding batch size (default: dense 64, colbert 32, splade 8)")


def _dataset(args):
    from .data import load_dataset

    return load_dataset(args.dataset, args.split)


def _name(args, ds) -> str:
    from .index.retrieve import slug

    parts = [ds.name, ds.split or "", args.retriever]
    if args.retriever == "dense":
        parts += [slug(args.model or ""), args.kind or "flat"]
    elif args.retriever in ("colbert", "splade"):
        parts += [slug(args.model or "")]
    return "-".join(p for p in parts if p)


def cmd_index(args):
    from .index import open_bm25, open_colbert, open_dense, open_splade
    from .index.retrieve import BATCH, index_path

    ds = _dataset(args)
    if args.retriever == "bm25":
        idx = open_bm25(ds.corpus, args.index or index_path(ds, "bm25"), args.rebuild)
    else:
        if not args.model:
            raise InputError(f"--retriever {args.retriever} needs --model")
        batch = args.batch_size or BATCH[args.retriever]
        if args.retriever == "colbert":
            idx, _ = open_colbert(ds, args.model, args.kind or "auto", args.index, args.rebuild, batch)
        elif args.retriever == "splade":
            idx, _ = open_splade(ds, args.model, args.index, args.rebuild, batch)
        else:
            idx, _ = open_dense(ds, args.model, args.kind or "flat", args.index, args.rebuild, batch)
    print(f"index: {os.path.abspath(idx.path)} ({len(ds.corpus)} documents)")


def cmd_search(args):
    from .data import read_queries, write_run
    from .index import BM25Index, ColbertIndex, SpladeIndex, load_index
    from .models import load_colbert, load_sentence_transformer, load_splade

    if bool(args.query) == bool(args.queries):
        raise InputError("give either --query TEXT or --queries FILE")
    queries = {"q1": args.query} if args.query else read_queries(args.queries)
    index = load_index(args.index)
    if isinstance(index, BM25Index):
        run = index.search(queries, args.k)
    elif isinstance(index, ColbertIndex):
        run = index.search(load_colbert(args.model or index.meta["model"]), queries, args.k)
    elif isinstance(index, SpladeIndex):
        run = index.search(load_splade(args.model or index.meta["model"]), queries, args.k)
    else:
        run = index.search(load_sentence_transformer(args.model or index.meta["model"]), queries, args.k)
    if args.output:
        write_run(run, args.output)
        print(f"run: {args.output} ({run['qid'].nunique()} queries)")
    else:
        for q, d, r, s in zip(run["qid"], run["docid"], run["rank"], run["score"]):
            print(f"{q}\t{r}\t{d}\t{s:.4f}")


def cmd_evaluate(args):
    from .data import read_run, write_run
    from .evaluation import evaluate_run, format_table, parse_metrics
    from .index import retrieve

    metrics = parse_metrics(args.metrics)  # fail on a bad metric before any work
    from .evaluation.suite import evaluate_suite, expand, format_suite

    datasets = expand(args.dataset, args.suite, args.split)
    if len(datasets) > 1 or args.suite:
        if args.run or args.index:
            raise InputError("--run and --index take one dataset")
        out = args.output or os.path.join("runs", _name(args, argparse.Namespace(name="suite", split="")))
        print(format_suite(evaluate_suite(datasets, args.retriever, args.model, args.kind, args.k, metrics, out, args.batch_size)))
        return
    args.dataset = datasets[0][0]
    ds = _dataset(args)
    if args.run:
        run, name = read_run(args.run), os.path.splitext(os.path.basename(args.run))[0]
    else:
        run = retrieve(ds, args.retriever, args.model, args.kind, args.k, args.index, args.rebuild, args.batch_size)
        name = _name(args, ds)
    scores = evaluate_run(ds.qrels, run, metrics)
    print(format_table([{"run": name, **scores}], ["run", *metrics]))
    out = args.output or os.path.join("runs", name)
    os.makedirs(out, exist_ok=True)
    if not args.run:
        write_run(run, os.path.join(out, "run.trec"), tag=name)
        write_run(run, os.path.join(out, "run.parquet"))
    from .data.io import atomic_path

    with atomic_path(os.path.join(out, "metrics.json")) as tmp, open(tmp, "w") as f:
        json.dump({"run": name, "dataset": args.dataset, "split": ds.split, "queries": len(ds.qrels),
                   "metrics": scores}, f, indent=1)
    print(f"wrote {out}/")


def cmd_compare(args):
    from .data import read_qrels, read_run
    from .evaluation import compare_runs

    if args.qrels:
        qrels: dict = {}
        for _, q, d, g in read_qrels(args.qrels):
            qrels.setdefault(q, {})[d] = g
    elif args.dataset:
        qrels = _dataset(args).qrels
    else:
        raise InputError("give --qrels FILE or --dataset")
    runs = {}
    for path in args.runs:
        name = os.path.basename(os.path.dirname(path)) if os.path.basename(path).startswith("run.") else os.path.basename(path)
        runs[name if name not in runs else path] = read_run(path)
    print(compare_runs(qrels, runs, args.metrics, args.test, args.max_p))


def cmd_candidates(args):
    from .data import write_run
    from .index import retrieve

    ds = _dataset(args)
    run = retrieve(ds, args.retriever, args.model, args.kind, args.k, args.index, args.rebuild, args.batch_size)
    if args.add_positives:
        from .data.runs import add_positives

        run = add_positives(run, ds.qrels)
    write_run(run, args.output)
    print(f"candidates: {args.output} ({run['qid'].nunique()} queries, {len(run)} pairs)")


def cmd_score(args):
    from .cache import ScoreCache
    from .data import load_dataset, read_run
    from .teachers import build_teacher, parse_shard, parse_spec, score_run
    from .teachers.ensemble import score_ensemble

    import yaml

    spec = parse_spec(args.teacher)
    for opt in args.option or []:
        key, eq, value = opt.partition("=")
        if not eq:
            raise InputError(f"--option takes key=value, not {opt!r}")
        spec[key.replace("-", "_")] = yaml.safe_load(value)
    from .data.runs import check_run_ids

    run, ds, cache, shard = read_run(args.run), _dataset(args), ScoreCache(args.cache), parse_shard(args.shard)
    check_run_ids(run, ds, args.run)
    if spec["kind"] == "ensemble":
        tid, pairs = score_ensemble(spec, run, ds, cache, shard, lambda split: load_dataset(args.dataset, split))
    else:
        teacher = build_teacher(spec, ds)
        stats = score_run(teacher, run, ds, cache, shard, flush_pairs=args.flush)
        tid, pairs = stats.key, stats.pairs
    print(f"teacher {tid}: scored {pairs} pairs; cache: {args.cache}")
    if args.output:
        from .data import write_run

        write_run(cache.run(tid, run["qid"].unique().tolist()), args.output)
        print(f"run: {args.output}")


def cmd_cache(args):
    from .cache import ScoreCache, export_margin_mse, import_margin_mse
    from .data import write_run

    cache = ScoreCache(args.cache)
    if args.action == "list":
        for tid, desc in cache.teachers().items():
            n = len(cache.read(tid, columns=("qid",)))
            print(f"{tid}\t{n} pairs\t{json.dumps(desc, sort_keys=True)}")
        return
    if not args.teacher:
        raise InputError(f"cache {args.action} needs --teacher ID")
    if args.action == "export-trec":
        cache.describe(args.teacher)
        write_run(cache.run(args.teacher), args.output, tag=args.teacher)
    elif args.action == "export-margin-mse":
        cache.describe(args.teacher)
        print(f"{export_margin_mse(cache, args.teacher, _dataset(args).qrels, args.output, args.max_negatives)} lines")
    elif args.action == "import-margin-mse":
        print(f"{import_margin_mse(cache, args.teacher, args.input)} pairs")
    elif args.action == "compact":
        cache.compact(args.teacher)


def cmd_train(args):
    from .training import TrainConfig, train

    cfg = TrainConfig.from_file(args.config)
    if args.output:
        cfg.output = args.output
    if not args.crossfit:
        print(f"model: {train(cfg)}")
        return
    from dataclasses import asdict

    from .cache import ScoreCache
    from .data import load_dataset, read_run
    from .data.runs import check_run_ids
    from .teachers.crossfit import crossfit

    if not args.run:
        raise InputError("--crossfit needs --run: the candidates each fold's model scores")
    run, ds = read_run(args.run), load_dataset(cfg.dataset, cfg.split)
    check_run_ids(run, ds, args.run)
    tid = crossfit(asdict(cfg), run, ds, ScoreCache(cfg.cache), args.crossfit)
    print(f"teacher {tid}: out-of-fold scores of {run['qid'].nunique()} queries; cache: {cfg.cache}")


def cmd_report(args):
    from .evaluation.report_page import load_runs, write_report

    path = write_report(args.output, _dataset(args).qrels, load_runs(args.runs), args.baseline, args.metrics, args.cache,
                        args.teacher or (), args.training or ())
    print(f"report: {path}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="irdistill", description="Knowledge distillation for retrieval and ranking.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build a BM25, FAISS, ColBERT or SPLADE index of a collection",
                       description="Build (or reuse) the BM25 (Lucene), dense (FAISS), ColBERT (FAISS over token "
                                   "embeddings) or SPLADE (Lucene impact) index of a collection.")
    _add_dataset(p)
    _add_retriever(p)
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search an index with a queries file or one query",
                       description="Search a saved index; prints 'qid rank docid score' or writes a run file.")
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--query", help="one query string")
    p.add_argument("--queries", help="queries file (BEIR queries.jsonl or qid<TAB>text)")
    p.add_argument("--model", help="query encoder for a dense, ColBERT or SPLADE index (default: the one it was built with)")
    p.add_argument("-k", "--k", type=int, default=10, help="hits per query")
    p.add_argument("--output", help="write the run here (.trec or .parquet) instead of printing it")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("evaluate", help="retrieve for a split and score the run",
                       description="Retrieve with BM25, a dense, ColBERT or SPLADE model (or read --run), print the "
                                   "metrics, and write run.trec, run.parquet and metrics.json to --output (default "
                                   "runs/<name>/).")
    _add_dataset(p, required=False, many=True)
    p.add_argument("--suite", choices=["beir"], help="add the public BEIR test sets (ir_datasets ids)")
    _add_retriever(p)
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated ranx metrics (default {DEFAULT_METRICS})")
    p.add_argument("-k", "--k", type=int, default=1000, help="retrieval depth")
    p.add_argument("--run", help="evaluate this run file instead of retrieving")
    p.add_argument("--output", help="output folder")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("candidates", help="retrieve top-k candidates for a split and write them as a run",
                       description="First-stage candidates (BM25, dense, ColBERT or SPLADE top-k) for teacher scoring, as a run file.")
    _add_dataset(p)
    _add_retriever(p)
    p.add_argument("-k", "--k", type=int, default=100, help="candidates per query")
    p.add_argument("--output", required=True, help="run file (.parquet or .trec)")
    p.add_argument("--add-positives", action="store_true",
                   help="append judged-relevant documents the retriever missed (training candidates)")
    p.set_defaults(func=cmd_candidates)

    p = sub.add_parser("score", help="score a run's candidates with a teacher into the Parquet cache",
                       description="Score every (query, candidate) of --run with --teacher into --cache; pairs already "
                                   "cached for this teacher are skipped, so a killed job resumes where it stopped.")
    p.add_argument("--teacher", required=True,
                   help="kind:model (cross-encoder:M, bi-encoder:M, llm-pointwise:M, llm-listwise:M, bm25) or a YAML/JSON spec")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="teacher option (repeatable), e.g. endpoint=URL")
    p.add_argument("--run", required=True, help="candidates (.parquet or .trec)")
    _add_dataset(p)
    p.add_argument("--cache", required=True, help="cache folder")
    p.add_argument("--shard", help="i/n: score only this slice of the queries (default: RANK/WORLD_SIZE of torchrun)")
    p.add_argument("--flush", type=int, default=2048, help="pairs per part file")
    p.add_argument("--output", help="also write the teacher's scores of this run as a run file")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("cache", help="list, export, import or compact the score cache",
                       description="list: teachers in the cache; export-trec / export-margin-mse: write a teacher's "
                                   "scores; import-margin-mse: load Hofstaetter's teacher file; compact: merge part files.")
    p.add_argument("action", choices=["list", "export-trec", "export-margin-mse", "import-margin-mse", "compact"])
    p.add_argument("--cache", required=True)
    p.add_argument("--teacher", help="the teacher's cache key (<teacher id>@<collection>, see `cache list`)")
    p.add_argument("--output", help="file to write (export)")
    p.add_argument("--input", help="file to read (import)")
    p.add_argument("--max-negatives", type=int, help="negatives per query in a Margin-MSE export")
    _add_dataset(p, required=False)
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("train", help="train a student from cached teacher scores (YAML config)",
                       description="Train a bi-encoder or cross-encoder student from a YAML config (see experiments/); "
                                   "resumes from the newest checkpoint in the output folder; the model goes to <output>/final.")
    p.add_argument("--config", required=True, help="YAML file")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--crossfit", type=int, metavar="K",
                   help="cross-fit a teacher instead: K models, each trained without one fold of the queries, score "
                        "that fold's candidates in --run into the cache (out-of-fold scores, one teacher id)")
    p.add_argument("--run", help="the candidates to score with --crossfit (.parquet or .trec)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="compare runs with paired significance tests",
                       description="Metrics of several runs side by side; superscripts mark significant wins (ranx).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run files (.trec or .parquet)")
    _add_dataset(p, required=False)
    p.add_argument("--qrels", help="qrels file (BEIR TSV or TREC) instead of --dataset")
    p.add_argument("--metrics", default=DEFAULT_METRICS)
    p.add_argument("--test", default="student", choices=["student", "fisher", "tukey"], help="paired test")
    p.add_argument("--max-p", type=float, default=0.05, help="significance level")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="an HTML page of figures about runs, teacher scores and training losses",
                       description="Write <output>/index.html (figures inlined, PNGs beside it): metrics with paired "
                                   "tests against --baseline, per-query deltas, recall@k; teacher score histograms and "
                                   "teacher-vs-run scatter (--cache, --teacher); loss curves (--training).")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run files (.trec or .parquet)")
    _add_dataset(p)
    p.add_argument("--baseline", help="run name the others are tested against (default: the first run)")
    p.add_argument("--metrics", default=DEFAULT_METRICS)
    p.add_argument("--cache", help="score cache folder")
    p.add_argument("--teacher", action="append", help="teacher id in --cache (repeatable)")
    p.add_argument("--training", action="append", help="training output folder with loss.jsonl (repeatable)")
    p.add_argument("--output", required=True, help="folder for index.html and the PNGs")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as e:
        print(f"irdistill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
