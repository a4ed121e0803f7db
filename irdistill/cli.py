"""``irdistill``: a thin command line over the library; each verb parses its options, calls one library function
and prints. Bad input exits with code 2 and a one-line error."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys

from .data.io import check_output
from .errors import SEED_RANGE, InputError, arg_type, number, safe_name

DEFAULT_METRICS = "ndcg@10,recall@100,mrr@10"
COUNT = arg_type(number, int, low=1)  # argparse types: checked before any verb runs
SEED = arg_type(number, int, **SEED_RANGE)
TEMPERATURE = arg_type(number, float, above=0)


def _add_dataset(p, required=True, many=False):
    p.add_argument("--dataset", required=required, action="append" if many else "store",
                   help="BEIR folder, MS MARCO folder (collection.tsv) or ir_datasets id"
                        + ("; repeat it (or give a comma list) for one table over several" if many else ""))
    p.add_argument("--split", help="split (BEIR default: test; MS MARCO default: dev.small; ir_datasets: appended to the id)")
    p.add_argument("--query-view-file", action="append", metavar="NAME=FILE",
                   help="attach the queries of FILE (queries.jsonl or qid<TAB>text) as query view NAME, e.g. an LLM's "
                        "rewrites for a teacher's query_view (repeatable)")


def _add_query_view(p):
    p.add_argument("--query-view", metavar="NAME", help="read this view of the queries (e.g. conversation, manual: a "
                                                         "conversational collection's; or one of --query-view-file)")


def _add_retriever(p):
    from .index import INDEXES

    kinds = sorted({k for cls in INDEXES.values() for k in cls.kinds})
    p.add_argument("--retriever", choices=list(INDEXES), default="bm25", help="first-stage retriever")
    p.add_argument("--model", help="model (hub name or folder) for a retriever that encodes: dense (a "
                                   "SentenceTransformer), colbert (a MultiVectorEncoder, or any BERT-like model to "
                                   "convert) or splade (a SparseEncoder or masked LM)")
    p.add_argument("--kind", choices=kinds,
                   help="index kind: " + "; ".join(f"{n} {', '.join(c.kinds)} (default {c.kinds[0]})"
                                                   for n, c in INDEXES.items() if c.kinds))
    p.add_argument("--index", help="index folder (default: indexes/<dataset>/...)")
    p.add_argument("--rebuild", action="store_true", help="build the index (and its encoding) again even if it exists")
    p.add_argument("--batch-size", type=COUNT, help="encoding batch size (default: " + ", ".join(
        f"{n} {c.batch_size}" for n, c in INDEXES.items() if c.loader) + ")")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="encoders' precision: auto and bf16 run bf16 (autocast) only where the CPU or GPU runs it "
                        "natively, else fp32; recorded in the index key and metrics.json")


def _add_scale_out(p):
    p.add_argument("--workers", type=COUNT, default=1,
                   help="processes that encode the corpus (dense, colbert, splade): one a GPU when there are GPUs, "
                        "else CPU processes sharing the cores (default 1)")
    p.add_argument("--shards", type=COUNT, help="dense: split the FAISS index into this many shards, searched in "
                                              "parallel threads (same results; with GPUs, on all GPUs anyway)")


def _add_cache(p, required=True):
    p.add_argument("--cache", required=required, help="score cache folder")


def _scale_out(args) -> dict:
    _positive("--workers", args.workers)
    _positive("--shards", args.shards)
    return {"workers": args.workers, **({"shards": args.shards} if args.shards is not None else {})}


def _retrieval(args) -> dict:
    return {"retriever": args.retriever, "model": args.model, "kind": args.kind, "index": args.index,
            "rebuild": args.rebuild, "batch_size": args.batch_size}


def _dataset(args):
    from .data import load_dataset

    return _query_views(load_dataset(args.dataset, args.split), args)


def _query_views(ds, args):
    """``ds`` with the query views of ``--query-view-file NAME=FILE`` attached, and read as its queries where
    ``--query-view`` names one (the split then reads ``<split>-<view>`` in the names of runs)."""
    from dataclasses import replace

    from .data.dataset import read_queries

    for item in getattr(args, "query_view_file", None) or []:
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise InputError(f"--query-view-file takes NAME=FILE, not {item!r}")
        ds.add_query_view(name, read_queries(path))
    view = getattr(args, "query_view", None)
    if view:
        ds = replace(ds, queries=ds.query_texts(view), split=f"{ds.split or 'queries'}-{view}")
    return ds


def _positive(name: str, value: int | None) -> None:
    if value is not None:
        number(value, name, int, low=1)


def cmd_index(args):
    """Build a BM25, FAISS, ColBERT or SPLADE index of a collection.

    Build (or reuse) the index of a collection: BM25 (Lucene), dense (FAISS), ColBERT (FAISS over token
    embeddings) or SPLADE (Lucene impact)."""
    from .index import open_index

    check_output(args.index, "folder", "--index")
    ds = _dataset(args)
    idx = open_index(ds, **_retrieval(args), **_scale_out(args))
    print(f"index: {os.path.abspath(idx.path)} ({len(ds.corpus)} documents)")


def cmd_search(args):
    """Search an index with a queries file or one query.

    Search a saved index. On a terminal: rank, score, id, title and a snippet per hit; piped, or with --format:
    TREC run lines or JSON lines. --output writes a run file instead."""
    from .data import read_queries, write_run
    from .index import load_index
    from .index.display import hits, remembered_corpus, render
    from .precision import encoding

    check_output(args.output)
    if bool(args.query) == bool(args.queries):
        raise InputError("give either --query TEXT or --queries FILE")
    _positive("-k", args.k)
    queries = {"query": args.query} if args.query else read_queries(args.queries)
    index = load_index(args.index, args.model)
    with encoding(index.meta.get("key", {}).get("precision", "fp32")):  # queries as the index's documents were
        run = index.search(queries, args.k, progress=len(queries) > 1)
    if args.output:
        write_run(run, args.output)
        print(f"run: {args.output} ({run['qid'].nunique()} queries)")
        return
    fmt = args.format or ("table" if sys.stdout.isatty() else "trec")
    corpus = None if fmt == "trec" else _dataset(args).corpus if args.dataset else remembered_corpus(args.index)
    sys.stdout.write(render(hits(run, corpus), fmt, queries))


def cmd_evaluate(args):
    """Retrieve for a split (or several datasets) and score the runs.

    Retrieve (or read --run), print the metrics, and write run.trec, run.parquet and metrics.json to --output
    (default runs/<name>/). Several --dataset (or --suite beir) print one table with a mean row, and pyserini's
    published BM25 figures where they exist."""
    from .data import load_dataset
    from .evaluation import evaluate_retrieval, evaluate_suite, format_suite, format_table
    from .evaluation.suite import expand

    check_output(args.output, "folder")
    check_output(args.index, "folder", "--index")
    _positive("-k", args.k)
    datasets = expand(args.dataset, args.suite, args.split)
    if len(datasets) > 1:
        print(format_suite(evaluate_suite(datasets, k=args.k, metrics=args.metrics, output=args.output, run=args.run,
                                          **_retrieval(args))))
        return
    if len(datasets) > 1 and (args.query_view or args.query_view_file):
        raise InputError("--query-view and --query-view-file take one --dataset")
    result = evaluate_retrieval(_query_views(load_dataset(*datasets[0]), args), k=args.k, metrics=args.metrics, run=args.run,
                                output=args.output, **_retrieval(args))
    print(format_table([{"run": result["run"], **result["metrics"]}]))
    print(f"wrote {result['output']}/")


def cmd_compare(args):
    """Compare runs with paired significance tests.

    Metrics of several runs side by side; superscripts mark significant wins (ranx)."""
    from .data import load_qrels
    from .evaluation import compare_run_files
    from .evaluation.metrics import parse_metrics

    parse_metrics(args.metrics)  # before any file is read
    if not (args.qrels or args.dataset):
        raise InputError("give --qrels FILE or --dataset")
    qrels = load_qrels(args.qrels) if args.qrels else _dataset(args).qrels
    print(compare_run_files(args.runs, qrels, args.metrics, args.test, args.max_p))


def cmd_candidates(args):
    """Retrieve top-k candidates for a split and write them as a run.

    First-stage candidates (top-k of any retriever) for teacher scoring, as a run file. With --shard i/n (default
    under torchrun: RANK/WORLD_SIZE) a process retrieves only shard i's queries and writes them to <output> with
    .part-i-of-n before its extension; `score --shard i/n --run` that part then reads no other query."""
    from .data import write_run
    from .data.shards import parse_shard, shard_path
    from .index.base import candidates

    check_output(args.output)
    check_output(args.index, "folder", "--index")
    _positive("-k", args.k)
    _positive("--sample-queries", args.sample_queries)
    shard = parse_shard(args.shard)
    output = shard_path(args.output, shard)
    run = candidates(_dataset(args), k=args.k, positives=args.add_positives, queries=args.sample_queries,
                     shard=shard, **_retrieval(args), **_scale_out(args))
    write_run(run, output)
    print(f"candidates: {output} ({run['qid'].nunique()} queries, {len(run)} pairs)")


def cmd_score(args):
    """Score a run's candidates with a teacher into the Parquet cache.

    Score every (query, candidate) of --run with --teacher into --cache; pairs already cached for this teacher
    are skipped (a query scored before gets only its new candidates), so a killed job resumes where it stopped."""
    from .cache import ScoreCache
    from .data import parse_shard, read_run, write_run
    from .data.runs import check_run_ids
    from .teachers import score_run

    check_output(args.output)
    _positive("--flush", args.flush)
    ds, cache, run = _dataset(args), ScoreCache(args.cache), read_run(args.run)
    check_run_ids(run, ds, args.run)
    stats = score_run(args.teacher, run, ds, cache, parse_shard(args.shard), args.flush, options=args.option)
    print(f"teacher {stats.key}: scored {stats.pairs} pairs; cache: {args.cache}")
    if args.output:  # this shard's pairs of the run, no more (the cache may hold other candidates of its queries)
        write_run(cache.run(stats.key, pairs=run[run["qid"].isin(stats.qids)]), args.output)
        print(f"run: {args.output}")


CACHE_NEEDS = {"export-trec": ["output"], "export-margin-mse": ["output", "dataset"], "export-jsonl": ["output", "dataset"],
               "import": ["input", "format"], "import-margin-mse": ["input"], "sparsify": ["k", "dataset"]}


def cmd_cache(args):
    """List, verify, export, import or compact the score cache.

    list: teachers in the cache; verify: check every part (readable, no pair twice, no NaN); export-trec /
    export-margin-mse / export-jsonl (--style flagembedding or tevatron, texts joined): write a teacher's scores;
    import: load a published teacher file (--format: margin-mse, st-scores, st-hard-negatives, run, colbert,
    pylate), keyed by its content; import-margin-mse: import --format margin-mse; compact: merge part files;
    sparsify: keep per query the teacher's top --k or --k draws from its distribution, weighted (--keep sample:
    Random-Sampling KD), as a new teacher entry for the --dataset's queries."""
    from .cache import ScoreCache, export_jsonl, export_margin_mse, import_teacher_file, sparsify
    from .data import write_run

    needs = ["teacher"] * (args.action not in ("list", "verify", "import", "import-margin-mse")) + \
        CACHE_NEEDS.get(args.action, [])
    missing = [n for n in needs if not getattr(args, n)]
    if missing:
        raise InputError(f"cache {args.action} needs --{missing[0]}")
    if args.teacher:
        safe_name(args.teacher, "teacher id")
    check_output(args.output)
    if not args.action.startswith("import") and not os.path.isdir(args.cache):
        raise InputError("no such cache folder" if not os.path.exists(args.cache) else "not a folder", args.cache)
    cache = ScoreCache(args.cache)
    if args.action == "list":
        for tid, desc in cache.teachers().items():
            print(f"{tid}\t{cache.count_pairs(tid)} pairs\t{json.dumps(desc, sort_keys=True)}")
        return
    if args.action == "verify":
        reports = cache.verify(args.teacher)
        for r in reports:
            problems = [f"{r.duplicates} duplicate pairs"] * bool(r.duplicates) + \
                [f"{r.nan_scores} NaN scores"] * bool(r.nan_scores) + \
                [f"unreadable {'part ' * p.endswith('.parquet')}{p} ({e})" for p, e in r.unreadable] + [f"stray file {p}" for p in r.stray]
            print(f"{r.teacher}\t{r.parts} parts\t{r.pairs} pairs\t{r.queries} queries\t"
                  f"{'ok' if r.ok else '; '.join(problems)}")
        if not all(r.ok for r in reports):
            raise InputError("the cache has problems (see above): `cache compact` removes duplicate pairs; remove "
                             "unreadable parts and score again", args.cache)
        return
    if args.action in ("import", "import-margin-mse"):
        fmt = "margin-mse" if args.action == "import-margin-mse" else args.format
        done = import_teacher_file(cache, args.input, fmt, args.teacher, args.scale)
        print(f"teacher {done.key}: {done.pairs} pairs of {done.queries} queries; cache: {args.cache}")
        return
    if args.action == "export-trec":
        cache.describe(args.teacher)
        write_run(cache.run(args.teacher), args.output, tag=args.teacher)
    elif args.action == "export-jsonl":
        print(f"{export_jsonl(cache, args.teacher, _dataset(args), args.output, args.style, args.max_negatives)} lines")
    elif args.action == "export-margin-mse":
        cache.describe(args.teacher)
        print(f"{export_margin_mse(cache, args.teacher, _dataset(args).qrels, args.output, args.max_negatives)} lines")
    elif args.action == "compact":
        cache.compact(args.teacher)
    elif args.action == "sparsify":
        ds = _dataset(args)
        key = sparsify(cache, args.teacher, ds, args.k, args.keep, args.temperature, args.seed)
        print(f"teacher {key}: {cache.count_pairs(key)} pairs of {len(cache.scored_qids(key))} queries "
              f"(from {cache.count_pairs(args.teacher)} pairs of {args.teacher})")


def cmd_generate_queries(args):
    """Generate queries for the passages of a collection (a pseudo-labelled BEIR folder).

    N queries per passage (or per passage of a --sample) from a model-free generator (title, sentence: inverse
    cloze, span: cropping) or an LLM (llm:MODEL, few-shot by default), filtered, written as
    <output>/<generator>-<hash>/ (queries.jsonl, qrels/<split>.tsv: each query -> its passage, corpus.jsonl
    linked) and printed. Generations are cached in <output>/raw/: a killed run resumes, a rerun generates
    nothing."""
    from .queries import generate_from_specs

    check_output(args.output, "folder")
    safe_name(args.split, "--split")  # it names the qrels file written
    res = generate_from_specs(args.dataset, args.generator, args.per_passage, args.sample, args.filter, args.option,
                              args.output, args.seed, args.split, args.shard)
    if not res.complete:
        print(f"generated {res.generated} passages; the shard that finishes last writes {res.folder}")
        return
    counts = res.meta["counts"]
    print(f"queries: {res.folder} ({counts['kept']} queries for {counts['documents_with_queries']} passages, "
          f"{sum(counts['dropped'].values())} filtered out; generated {res.generated} passages now)")


def cmd_rewrite(args):
    """Rewrite conversational queries into self-contained ones with an LLM (a query view).

    Each query of --dataset, as its --from view reads (default conversation: the turn and the turns before it), is
    rewritten greedily by --llm MODEL (in-process, a GGUF file with --option gguf_file=F, or an OpenAI-compatible
    server with --option endpoint=URL) into --output (queries.jsonl). Answers are cached beside it by content: a
    killed run resumes, a rerun asks nothing. Attach the view with --query-view-file NAME=FILE, e.g. for a
    teacher's query_view."""
    from .models.llm import make_backend
    from .queries.rewrite import rewrite_queries
    from .queries.spec import parse_options
    from .teachers.llm.spec import BACKEND_KEYS

    check_output(args.output)
    options = parse_options(args.option, "--option")
    unknown = sorted(set(options) - (set(BACKEND_KEYS) - {"model"}) - {"max_tokens", "batch_size"})
    if unknown:
        raise InputError(f"--option {unknown[0]}: not an option of the rewriter (its backend's: "
                         f"{', '.join(k for k in BACKEND_KEYS if k != 'model')}; max_tokens, batch_size)")
    ds = _dataset(args)
    texts = ds.query_texts(args.source)
    run = {k: options.pop(k) for k in ("max_tokens", "batch_size") if k in options}
    for k, v in run.items():
        number(v, f"--option {k}", int, low=1)
    view = rewrite_queries(texts, make_backend(args.llm, **options), args.output, **run)
    print(f"wrote {len(view)} rewrites of {ds.name} ({args.source}) to {args.output}")


def cmd_adapt(args):
    """Adapt a retriever to a collection with no labels (generated queries, teacher scores, distillation).

    Generate queries for the passages of --dataset (a BEIR folder), take candidates from BM25 and the model's own
    dense retrieval, score them with the teacher (default: BM25 + the model, z-scored, weights 0.3/0.7 fit on
    SciFact train) into <output>/cache, train the student on those scores, and, when the folder has
    qrels/<eval-split>.tsv, evaluate BM25, the teacher and the student before and after. Every step is cached
    under --output: a rerun generates, scores and trains nothing. Writes <output>/adapt.json."""
    from .adapt import GENERATORS, AdaptConfig, adapt
    from .queries import parse_options
    from .teachers.spec import parse_spec

    check_output(args.output, "folder")
    cfg = AdaptConfig(args.dataset, args.output, args.model, args.student, args.generator or list(GENERATORS),
                      args.per_passage, args.sample, args.filter or [], args.option or [], args.depth,
                      parse_spec(args.teacher) if args.teacher else None, parse_options(args.set, "--set"),
                      args.eval_split, args.seed)
    if args.embedding_teacher:  # embedding distillation over the collection's passages, beside the score losses
        cfg.training["embeddings"] = {"teacher": parse_spec(args.embedding_teacher)}
    result = adapt(cfg)
    print(f"model: {result['model']}")
    if "evaluation" in result:
        from .evaluation import format_table

        print(format_table([{"system": name, **m} for name, m in result["evaluation"].items()]))
    print(f"results: {os.path.join(args.output, 'adapt.json')}")


def cmd_train(args):
    """Train a student from cached teacher scores (YAML config).

    Train a student (bi-encoder, cross-encoder, ColBERT, SPLADE) from a YAML config (see README); resumes from
    the newest checkpoint in the output folder when it holds the same run (<output>/training.json: the config and
    its inputs' fingerprints), and refuses a folder holding another; the model goes to <output>/final."""
    from .training import TrainConfig, crossfit, train

    cfg = TrainConfig.from_file(args.config, args.set or ())
    if args.output:
        cfg.output = args.output
    check_output(cfg.output, "folder", "--output" if args.output else f"output of {args.config}")
    if not args.crossfit:
        print(f"model: {train(cfg)}")
        return
    if not args.run:
        raise InputError("--crossfit needs --run: the candidates each fold's model scores")
    stats = crossfit(cfg, args.run, folds=args.crossfit)
    print(f"teacher {stats.key}: out-of-fold scores of {len(stats.qids)} queries; cache: {cfg.cache}")


def cmd_merge(args):
    """Interpolate or average model weights (WiSE-FT, model soups).

    Write (1 - alpha) * base + alpha * mean(models) to --output: every student type (SentenceTransformer,
    CrossEncoder, ColBERT, SPLADE), models of one architecture only. The output is a copy of the first --model
    (tokenizer, configs) with the merged weights."""
    from .models.merge import merge_models

    check_output(args.output, "folder")
    print(f"model: {merge_models(args.base, args.model, args.alpha, args.output)}")


def cmd_report(args):
    """An HTML page of figures about runs, teacher scores and training losses.

    Write <output>/index.html (figures inlined, PNGs beside it): metrics with paired tests against --baseline,
    per-query deltas, recall@k; teacher score histograms and teacher-vs-run scatter (--cache, --teacher); loss
    curves (--training)."""
    from .evaluation.report_page import load_runs, write_report

    check_output(args.output, "folder")
    path = write_report(args.output, _dataset(args).qrels, load_runs(args.runs), args.baseline, args.metrics, args.cache,
                        args.teacher or (), args.training or ())
    print(f"report: {path}")


def cmd_card(args):
    """Add `irdistill evaluate` results to a model's card (README.md).

    Add the metrics that `irdistill evaluate` wrote (runs/<name>/metrics.json, or every dataset of a suite's
    folder) to the model card of --model: its model-index (the evaluation results the Hugging Face hub shows)
    and an 'Evaluation (irdistill)' table. A trained student's card already says what it was distilled from."""
    from .training.card import add_results

    check_output(os.path.join(args.model, "README.md"), option="--model")
    path, n = add_results(args.model, args.results)
    print(f"card: {path} ({n} result{'s' * (n != 1)} added)")


class _Help(argparse.HelpFormatter):
    """Every option's default in its help, unless the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default %(default)s)" if text else "(default %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Command-line errors (a bad number, a missing option) are InputErrors: ``main`` prints them on one line."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        m = re.fullmatch(r"argument (\S+): (.*)", message, re.S)  # "argument -k/--k: must be at least 1, not 0"
        if m:
            message = f"{m[1]} {m[2]}" if m[2].startswith("must ") else f"{m[1]}: {m[2]}"
        raise InputError(message)


def build_parser() -> argparse.ArgumentParser:
    from .cache.teacher_files import FORMATS, SCALES

    from importlib.metadata import version

    parser = _Parser(prog="irdistill", description="Knowledge distillation for retrieval and ranking.")
    parser.add_argument("--version", action="version", version=f"irdistill {version('irdistill')}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = _Parser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they show only on a terminal)")

    def verb(func):
        """A verb named after ``cmd_<name>``: its docstring's first line is the help, the rest the description;
        every verb takes --quiet."""
        summary, _, rest = func.__doc__.partition("\n\n")
        p = sub.add_parser(func.__name__[4:].replace("_", "-"), parents=[common], help=summary[0].lower() + summary[1:-1],
                           description=" ".join(rest.split()))
        p.set_defaults(func=func)
        return p


    p = verb(cmd_index)
    _add_dataset(p)
    _add_retriever(p)
    _add_scale_out(p)

    p = verb(cmd_search)
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--query", help="one query string")
    p.add_argument("--queries", help="queries file (BEIR queries.jsonl or qid<TAB>text)")
    p.add_argument("--model", help="query encoder for an index with a model (default: the one it was built with)")
    p.add_argument("-k", "--k", type=COUNT, default=10, help="hits per query")
    p.add_argument("--output", help="write the run here (.trec or .parquet) instead of printing it")
    p.add_argument("--format", choices=["table", "trec", "json"],
                   help="printed hits: an aligned table with titles and snippets, TREC run lines, or JSON lines "
                        "(default: table on a terminal, trec when piped)")
    _add_dataset(p, required=False)

    p = verb(cmd_evaluate)
    _add_dataset(p, required=False, many=True)
    _add_query_view(p)
    p.add_argument("--suite", choices=["beir"], help="add the public BEIR test sets (ir_datasets ids)")
    _add_retriever(p)
    p.add_argument("--metrics", default=DEFAULT_METRICS, help="comma-separated ranx metrics")
    p.add_argument("-k", "--k", type=COUNT, default=1000, help="retrieval depth")
    p.add_argument("--run", help="evaluate this run file instead of retrieving")
    p.add_argument("--output", help="output folder")

    p = verb(cmd_candidates)
    _add_dataset(p)
    _add_query_view(p)
    _add_retriever(p)
    _add_scale_out(p)
    p.add_argument("-k", "--k", type=COUNT, default=100, help="candidates per query")
    p.add_argument("--output", required=True, help="run file (.parquet or .trec)")
    p.add_argument("--add-positives", action="store_true",
                   help="append judged-relevant documents the retriever missed (training candidates)")
    p.add_argument("--sample-queries", type=COUNT, metavar="N", help="only a seeded sample of N queries of the split")
    p.add_argument("--shard", help="i/n: only this slice of the (sampled) queries, written as <output>.part-i-of-n "
                                   "(default: RANK/WORLD_SIZE of torchrun)")

    p = verb(cmd_score)
    p.add_argument("--teacher", required=True,
                   help="kind:model (cross-encoder:M, bi-encoder:M, llm-pointwise:M, llm-listwise:M, bm25) or a YAML/JSON spec")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="teacher option (repeatable), e.g. endpoint=URL")
    p.add_argument("--run", required=True, help="candidates (.parquet or .trec)")
    _add_dataset(p)
    _add_cache(p)
    p.add_argument("--output", help="also write the teacher's scores of this run as a run file")
    p.add_argument("--shard", help="i/n: score only this slice of the queries (default: RANK/WORLD_SIZE of torchrun)")
    p.add_argument("--flush", type=COUNT, default=2048, help="pairs per part file")

    p = verb(cmd_cache)
    p.add_argument("action", choices=["list", "verify", "export-trec", "export-margin-mse", "export-jsonl", "import",
                                      "import-margin-mse", "compact", "sparsify"],
                   help="list the teachers, verify the part files, export a teacher's scores, import a teacher file, "
                        "compact the part files, or keep K scores per query (sparsify)")
    _add_cache(p)
    p.add_argument("--teacher", help="the teacher id (as `score` and `cache list` print it); for "
                                     "import, a name the id starts with (default: the format)")
    p.add_argument("--output", help="file to write (export)")
    p.add_argument("--input", help="file to read (import)")
    p.add_argument("--format", choices=list(FORMATS), help="import: the file's layout (see irdistill/cache/teacher_files.py)")
    p.add_argument("--scale", choices=list(SCALES), default="unknown",
                   help="import: what the scores are, recorded for the losses (default unknown)")
    p.add_argument("--max-negatives", type=COUNT, help="negatives per query in a Margin-MSE or jsonl export")
    p.add_argument("--style", choices=["flagembedding", "tevatron"], default="flagembedding",
                   help="export-jsonl: the trainer's layout (default flagembedding)")
    p.add_argument("--k", type=COUNT, help="sparsify: candidates kept (top) or drawn (sample) per query")
    p.add_argument("--keep", choices=["sample", "top"], default="sample",
                   help="sparsify: K draws from the teacher's distribution with importance weights, or its top K "
                        "(default sample)")
    p.add_argument("--temperature", type=TEMPERATURE, default=1.0,
                   help="sparsify --keep sample: the distribution softmax(minmax(score) / T) (default 1.0; train "
                        "with the same examples.temperature)")
    p.add_argument("--seed", type=SEED, default=0, help="sparsify: seed of the draws (default 0)")
    _add_dataset(p, required=False)

    p = verb(cmd_generate_queries)
    p.add_argument("--dataset", required=True,
                   help="BEIR or MS MARCO folder (no queries needed), corpus .jsonl/.tsv file, or ir_datasets id")
    p.add_argument("--generator", required=True, help="title, sentence, span or llm:MODEL")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="generator option (repeatable), e.g. min_words=4, or for llm: endpoint=URL, template=zero-shot, "
                        "temperature=0.7, examples=DATASET (few-shot pairs from its train split), batch_size=16")
    p.add_argument("--per-passage", type=COUNT, default=1, metavar="N", help="queries per passage (default 1)")
    p.add_argument("--sample", type=COUNT, metavar="N", help="only a seeded sample of N passages")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE",
                   help="filter setting (repeatable): min_words=2, max_words=32, max_copy=0.8, dedup=set|doc|none, "
                        "consistency=RETRIEVER (keep a query whose passage it ranks in the top consistency_k, "
                        "default 1; consistency_model=M, consistency_index=DIR)")
    p.add_argument("--output", required=True, help="folder for the generated datasets and their cache")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the sample and of sampled queries (default 0)")
    p.add_argument("--split", default="train", help="name of the split the pseudo-qrels are written as (default train)")
    p.add_argument("--shard", help="i/n: generate only this share of the passages (n processes at once)")

    p = verb(cmd_rewrite)
    _add_dataset(p)
    p.add_argument("--llm", required=True, metavar="MODEL", help="the rewriting LLM (hub name or folder; with "
                                                                 "--option endpoint=URL, the server's model name)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="backend option (repeatable): endpoint=URL, gguf_file=F, api_key=K, device, dtype; or "
                        "max_tokens (64), batch_size (8)")
    p.add_argument("--from", dest="source", default="conversation", metavar="VIEW",
                   help="the query view each prompt shows (default conversation)")
    p.add_argument("--output", required=True, help="queries.jsonl to write (its cache: <output>.cache.jsonl)")

    p = verb(cmd_adapt)
    p.add_argument("--dataset", required=True, help="BEIR folder (corpus.jsonl; qrels/<eval-split>.tsv to evaluate)")
    p.add_argument("--output", required=True, help="folder for every cached step (queries, runs, cache, models)")
    p.add_argument("--generator", action="append", help="title, sentence, span or llm:MODEL (repeat to mix; "
                                                        "default: sentence and llm:smollm2-135m-instruct-gguf)")
    p.add_argument("--per-passage", type=COUNT, default=1, metavar="N", help="queries per passage (default 1)")
    p.add_argument("--sample", type=COUNT, default=2000, metavar="N", help="passages to generate for (default 2000)")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE", help="query filter, as generate-queries")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="generator option, as generate-queries")
    p.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2", help="the starting model")
    p.add_argument("--student", default="bi-encoder", help="bi-encoder or cross-encoder (default bi-encoder)")
    p.add_argument("--depth", type=COUNT, default=30, help="candidates per query from BM25 and from the model each")
    p.add_argument("--teacher", help="a teacher spec (kind:model or YAML/JSON file) instead of the default ensemble")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="training option over the recipe's (repeatable), e.g. epochs=2 or learning_rate=3e-5")
    p.add_argument("--eval-split", default="test", help="judged split to evaluate on, if the folder has one")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the passage sample and the generator")
    p.add_argument("--embedding-teacher", metavar="SPEC",
                   help="also distil this teacher's embeddings of the collection's passages (embeddings-api or "
                        "bi-encoder; kind:model or a YAML/JSON spec, e.g. one naming an embeddings endpoint)")

    p = verb(cmd_train)
    p.add_argument("--config", required=True, help="YAML file")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an option of the config (repeatable), e.g. examples.teacher=ID or epochs=3")
    p.add_argument("--crossfit", type=arg_type(number, int, low=2), metavar="K",
                   help="cross-fit a teacher instead: K models, each trained without one fold of the queries, score "
                        "that fold's candidates in --run into the cache (out-of-fold scores, one teacher id)")
    p.add_argument("--run", help="the candidates to score with --crossfit (.parquet or .trec)")

    p = verb(cmd_merge)
    p.add_argument("--base", required=True, help="the starting model (hub name or folder), e.g. the zero-shot model")
    p.add_argument("--model", required=True, action="append", help="a fine-tuned model (repeat it for a soup)")
    p.add_argument("--alpha", required=True, type=arg_type(number, float, low=0, high=1),
                   help="weight of the fine-tuned model(s), from 0 to 1")
    p.add_argument("--output", required=True, help="folder to write")

    p = verb(cmd_card)
    p.add_argument("results", nargs="+", metavar="RESULT", help="metrics.json, or a folder holding one or several")
    p.add_argument("--model", required=True, help="model folder, e.g. models/<name>/final")

    p = verb(cmd_compare)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run files (.trec or .parquet)")
    _add_dataset(p, required=False)
    p.add_argument("--qrels", help="qrels file (BEIR TSV or TREC) instead of --dataset")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help="comma-separated ranx metrics")
    p.add_argument("--test", default="student", choices=["student", "fisher", "tukey"], help="paired test")
    p.add_argument("--max-p", type=arg_type(number, float, above=0, below=1), default=0.05, help="significance level")

    p = verb(cmd_report)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run files (.trec or .parquet)")
    _add_dataset(p)
    p.add_argument("--baseline", help="run name the others are tested against (default: the first run)")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help="comma-separated ranx metrics")
    _add_cache(p, required=False)
    p.add_argument("--teacher", action="append", help="teacher id in --cache (repeatable)")
    p.add_argument("--training", action="append", help="training output folder with loss.jsonl (repeatable)")
    p.add_argument("--output", required=True, help="folder for index.html and the PNGs")
    return parser


def _encoding(args):
    """The precision encoders run in for a verb that takes --precision and encodes (a --model is given)."""
    if getattr(args, "precision", None) is None or not getattr(args, "model", None):
        return contextlib.nullcontext()
    from .precision import encoding

    return encoding(args.precision, getattr(args, "workers", 1) or 1)


def main(argv: list[str] | None = None) -> int:
    from .progress import library_bars_off, quiet

    try:
        args = build_parser().parse_args(argv)
        quiet() if args.quiet else library_bars_off()  # ours show on a terminal only (tqdm.auto)
        with _encoding(args):
            args.func(args)
    except InputError as e:
        print(f"irdistill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `irdistill search ... | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
