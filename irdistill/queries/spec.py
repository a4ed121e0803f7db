"""``generate_from_specs``: query generation as the command line states it (a collection, ``kind[:model]``,
``key=value`` options and filters), checked before any model loads or anything is written."""

from __future__ import annotations

import functools
import os

from ..data.corpus import Corpus
from ..data.dataset import Dataset, load_ir_datasets
from ..data.shards import parse_shard
from ..errors import InputError, check_options, key_value, keyword_types, number
from ..teachers.spec import backend_types
from .base import QueryGenerator, construct
from .filters import ConsistencyFilter, Filters
from .generate import GeneratedQueries, generate_queries
from .llm import LLMQueries
from .model_free import SentenceQueries, SpanQueries, TitleQueries

GENERATORS = {"title": TitleQueries, "sentence": SentenceQueries, "span": SpanQueries, "llm": LLMQueries}
# generator option -> its range (the constructors' annotations give the types)
RANGES = {"min_words": {"low": 1}, "max_words": {"low": 1}, "temperature": {"low": 0}, "top_p": {"above": 0, "high": 1},
          "max_tokens": {"low": 1}, "batch_size": {"low": 1}, "examples_k": {"low": 1}, "top_logprobs": {"low": 1}}


def parse_options(pairs, flag: str) -> dict:
    """``key=value`` strings as a dict (values read as YAML, ``-`` in keys read as ``_``)."""
    out = {}
    for pair in pairs or ():
        key, value = key_value(pair, flag)
        out[key.replace("-", "_")] = value
    return out


def load_corpus(source) -> Dataset:
    """The documents of ``source`` as a Dataset without queries (none are needed): a BEIR folder (``corpus.jsonl``),
    an MS MARCO folder (``collection.tsv``), a corpus file (``.jsonl`` or ``.tsv``) or an ir_datasets id."""
    source = os.fspath(source)
    folder = os.path.isdir(source)
    for path in [os.path.join(source, f) for f in ("corpus.jsonl", "collection.tsv")] if folder else [source]:
        if os.path.isfile(path):
            corpus = Corpus.from_tsv(path) if path.endswith(".tsv") else Corpus.from_jsonl(path)
            name = os.path.basename(os.path.normpath(source if folder else os.path.dirname(os.path.abspath(source))))
            return Dataset(name, corpus, {}, source=source)
    if folder or os.path.exists(source) or source.startswith((".", os.path.sep, "~")):
        raise InputError("not a corpus (no corpus.jsonl or collection.tsv)" if folder else "no such file or folder",
                         source)
    return Dataset(source.replace("/", "-"), load_ir_datasets(source, docs_only=True), {}, source=source)


def make_generator(spec: str, options: dict) -> QueryGenerator:
    """``title``, ``sentence``, ``span`` or ``llm:MODEL``, with its constructor's options (``QueryGenerator.from_options``)."""
    kind, _, model = str(spec).partition(":")
    if kind not in GENERATORS:
        raise InputError(f"unknown generator {kind!r} (choose from title, sentence, span, llm:MODEL)")
    types = keyword_types(GENERATORS[kind].__init__, skip=("backend",))
    if kind == "llm":  # from_options hands these to the backend, or draws the examples from a dataset
        types.update({**backend_types(), "examples": str, "examples_split": str, "examples_k": int})
    check_options(options, types, RANGES, "--option")
    return GENERATORS[kind].from_options(model, options)


def make_filters(options: dict, dataset: Dataset, progress: bool = True) -> Filters:
    """``Filters`` from ``min_words``, ``max_words``, ``max_copy``, ``dedup`` (doc, set, none) and the consistency
    filter: ``consistency=RETRIEVER`` (any index kind; ``consistency_model``, ``consistency_index`` a folder) keeps a
    query whose passage that retriever ranks in the top ``consistency_k`` (1). Its index is opened (built when
    missing) only when the filter first runs."""
    from ..index import index_class, open_index

    opts = dict(options)
    check_options(opts, {**dict.fromkeys(("consistency", "consistency_model", "consistency_index"), str),
                         "consistency_k": int}, {"consistency_k": {"low": 1}}, "--filter")
    retriever, model = opts.pop("consistency", None), opts.pop("consistency_model", None)
    k, folder = opts.pop("consistency_k", 1), opts.pop("consistency_index", None)
    if str(opts.get("dedup")).lower() in ("none", "off", "false"):
        opts["dedup"] = None
    filters = construct(Filters, opts, "--filter")
    if retriever is None:
        return filters
    if index_class(str(retriever)).loader and not model:
        raise InputError(f"--filter consistency={retriever} needs consistency_model=MODEL")
    opened = functools.cache(lambda: open_index(dataset, str(retriever), model, index=folder, progress=progress))
    name = f"{retriever}:{model}" if model else str(retriever)
    filters.consistency = ConsistencyFilter(lambda queries: opened().search(queries, k=k), k=k, name=name)
    return filters


MAX_PER_PASSAGE = 1000  # a generator returns exactly this many queries per passage (most empty): held in memory


def generate_from_specs(source, generator: str, per_passage: int = 1, sample: int | None = None, filters=(),
                        options=(), output="generated", seed: int = 0, split: str = "train", shard: str | None = None,
                        progress: bool = True) -> GeneratedQueries:
    """``generate_queries`` over the collection ``source`` (``load_corpus``) with the generator ``generator``
    (``make_generator``; ``options``: its ``key=value`` settings) and ``filters`` (``key=value``, ``make_filters``).
    ``shard``: ``"i/n"``, this process' share of the passages (see ``generate_queries``)."""
    for flag, value, high in (("--per-passage", per_passage, MAX_PER_PASSAGE), ("--sample", sample, None)):
        if value is not None:
            number(value, flag, int, low=1, high=high)
    gen_options, filter_options = parse_options(options, "--option"), parse_options(filters, "--filter")
    part = parse_shard(shard) if shard else None
    dataset = load_corpus(source)
    chosen = make_filters(filter_options, dataset, progress)
    made = make_generator(generator, gen_options)  # last: an LLM loads here
    return generate_queries(dataset.corpus, made, per_passage, sample, seed, output, chosen, split, shard=part,
                            progress=progress)
