"""``load_dataset``: corpus, queries and qrels of one split, from a BEIR folder, MS MARCO/TREC files or ir_datasets."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..errors import InputError, require_file, safe_name
from . import store
from .corpus import SCHEMA, Corpus, content_fingerprint
from .io import check_id, check_text, read_jsonl, read_lines, read_tsv

Qrels = dict  # qid -> {docid: grade}


@dataclass
class Dataset:
    name: str
    corpus: Corpus
    queries: dict[str, str]  # qid -> text, only the split's queries when qrels are given
    qrels: Qrels = field(default_factory=dict)
    split: str | None = None
    views: dict[str, Corpus] = field(default_factory=dict)  # other texts of the same documents, e.g. {"en": originals}
    source: str | None = None  # the folder or ir_datasets id it was loaded from (``load_dataset``), for other splits
    query_views: dict[str, dict[str, str]] = field(default_factory=dict)  # other texts of the queries: a
    # conversation's turns, a person's or an LLM's rewrite (conversations.py); qid -> text, by view name

    def other_split(self, split: str) -> "Dataset":
        """Another split of the same collection (e.g. the training split whose labels fit an ensemble's weights)."""
        if "/" in split:  # a whole ir_datasets id, e.g. msmarco-passage/train/judged
            return load_dataset(split)
        if self.source is None:
            raise InputError(f"{self.name} was not loaded by load_dataset: load its {split!r} split yourself")
        return load_dataset(self.source, split)

    def view(self, name: str | None = None) -> Corpus:
        """The corpus (``name`` None) or one of its other text views, such as the source text of a translation."""
        if name is None:
            return self.corpus
        if name not in self.views:
            raise InputError(f"{self.name} has no text view {name!r} (has: {', '.join(self.views) or 'none'})")
        return self.views[name]

    def query_texts(self, name: str | None = None) -> dict[str, str]:
        """The split's queries (``name`` None) or their texts in query view ``name`` (every query must have one)."""
        if name is None:
            return self.queries
        if name not in self.query_views:
            raise InputError(f"{self.name} has no query view {name!r} (has: {', '.join(self.query_views) or 'none'})")
        view = self.query_views[name]
        missing = [q for q in self.queries if q not in view]
        if missing:
            raise InputError(f"query view {name!r} of {self.name} lacks query {missing[0]!r} ({len(missing)} missing)")
        return {q: view[q] for q in self.queries}

    def add_query_view(self, name: str, texts: dict[str, str]) -> None:
        """Attach ``texts`` (qid -> text) as query view ``name``; extra ids are kept for other splits."""
        safe_name(name, "query view")
        self.query_views[name] = dict(texts)

    def fingerprint(self) -> dict[str, str]:
        """The split by content: the corpus's fingerprint and those of its queries and judgements, each hashed as
        ``content_fingerprint`` hashes documents (sorted by id: the order of a file's lines does not count). What
        is made from a split (a trained model, stored metrics) is keyed by it."""
        def records(rows) -> str:  # (id, title, text) columns; a judgement is (qid, docid, grade)
            columns = list(zip(*rows)) or [(), (), ()]
            return content_fingerprint(pa.table([pa.array(c, pa.string()) for c in columns], schema=SCHEMA))

        queries = sorted((q, "", t) for q, t in self.queries.items())
        judged = sorted((q, d, str(g)) for q, docs in self.qrels.items() for d, g in docs.items())
        return {"corpus": self.corpus.fingerprint(), "queries": records(queries), "qrels": records(judged)}

    def add_view(self, name: str, corpus: Corpus) -> None:
        """Attach ``corpus`` as view ``name``; it must hold a text for every document id (extra ids are ignored)."""
        missing = np.flatnonzero(corpus.lookup(self.corpus.ids) < 0)
        if len(missing):
            first = self.corpus.ids[int(missing[0])].as_py()
            raise InputError(f"view {name!r} lacks document {first!r} ({len(missing)} missing)", corpus.source)
        self.views[name] = corpus


def load_view(source) -> Corpus:
    """A text view from a BEIR ``corpus*.jsonl`` / ``collection.tsv`` file or an ir_datasets id (joined by doc id)."""
    source = os.fspath(source)
    if os.path.exists(source):
        return Corpus.from_jsonl(source) if source.endswith((".jsonl", ".jsonl.gz")) else Corpus.from_tsv(source)
    return load_ir_datasets(source, docs_only=True)


def read_queries(path) -> dict[str, str]:
    """Queries from BEIR ``queries.jsonl`` (``_id``, ``text``) or a ``qid<TAB>text`` TSV file."""
    path = require_file(path)
    out: dict[str, str] = {}
    if path.endswith((".jsonl", ".jsonl.gz")):
        rows = ((n, r["_id"], r["text"]) for n, r in read_jsonl(path, required=("_id", "text")))
    else:
        rows = ((n, qid, text) for n, (qid, text) in read_tsv(path, 2))
    for n, qid, text in rows:
        qid = check_id(qid, "query id", path, n)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"query {qid!r} has no text", path, n)
        if qid in out:
            raise InputError(f"duplicate query id {qid!r}", path, n)
        out[qid] = check_text(text, f"query {qid!r}", path, n)
    if not out:
        raise InputError("no queries", path)
    return out


_GRADE = re.compile(r"[+-]?[0-9]{1,9}(?:\.0*)?", re.ASCII)


def parse_grade(text: str, path=None, line: int | None = None) -> int:
    """A relevance grade: an integer (``2``, ``-1``, ``1.0``); ``1.7``, ``inf``, ``nan`` or words raise InputError."""
    text = text.strip()
    if not _GRADE.fullmatch(text):
        raise InputError(f"relevance grade {text[:40]!r} is not an integer", path, line)
    return int(text.split(".")[0])


def read_qrels(path):
    """Yield ``(line, qid, docid, grade)`` from a BEIR TSV (``query-id corpus-id score``) or TREC qrels file
    (``qid iteration docid grade``); the format is told by the first non-blank line."""
    path = require_file(path)
    beir = None
    for n, line in read_lines(path):
        if not line.strip():
            continue
        if beir is None:
            beir = line.count("\t") == 2 or line.lower().startswith("query-id")
            if beir and [x.strip().lower() for x in line.split("\t")[:2]] == ["query-id", "corpus-id"]:
                continue
        fields = line.split("\t") if beir else line.split()
        if len(fields) != (3 if beir else 4):
            raise InputError(f"expected {3 if beir else 4} columns, found {len(fields)}", path, n)
        q, d, g = fields if beir else (fields[0], fields[2], fields[3])
        yield n, check_id(q, "query id", path, n), check_id(d, "document id", path, n), parse_grade(g, path, n)


def load_qrels(path) -> Qrels:
    """A qrels file (BEIR TSV or TREC) as ``{qid: {docid: grade}}``, without a corpus to check the ids against."""
    qrels: Qrels = {}
    for n, q, d, g in read_qrels(path):
        if qrels.get(q, {}).get(d, g) != g:
            raise InputError(f"({q!r}, {d!r}) is judged twice, with grades {qrels[q][d]} and {g}", path, n)
        qrels.setdefault(q, {})[d] = g
    if not qrels:
        raise InputError("no judgements", path)
    return qrels


def _load_qrels(path, queries: dict[str, str], corpus: Corpus) -> Qrels:
    rows = list(read_qrels(path))
    known = corpus.contains([d for _, _, d, _ in rows])
    qrels: Qrels = {}
    for (n, q, d, g), ok in zip(rows, known):
        if q not in queries:
            raise InputError(f"unknown query id {q!r}", path, n)
        if not ok:
            raise InputError(f"unknown document id {d!r}", path, n)
        if qrels.get(q, {}).get(d, g) != g:
            raise InputError(f"({q!r}, {d!r}) is judged twice, with grades {qrels[q][d]} and {g}", path, n)
        qrels.setdefault(q, {})[d] = g
    if not qrels:
        raise InputError("no judgements", path)
    return qrels


def load_files(corpus, queries, qrels=None, name: str | None = None, split: str | None = None) -> Dataset:
    """Load from explicit files: corpus (``.jsonl`` BEIR or ``.tsv`` MS MARCO), queries, and optional qrels."""
    corpus_path = os.fspath(corpus)
    docs = Corpus.from_jsonl(corpus_path) if corpus_path.endswith((".jsonl", ".jsonl.gz")) else Corpus.from_tsv(corpus_path)
    qs = read_queries(queries)
    judged = _load_qrels(qrels, qs, docs) if qrels else {}
    if judged:
        qs = {q: t for q, t in qs.items() if q in judged}
    return Dataset(name or os.path.basename(os.path.dirname(os.path.abspath(corpus_path))), docs, qs, judged, split)


def load_beir(folder, split: str = "test", corpus_file: str = "corpus.jsonl") -> Dataset:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``."""
    folder = os.fspath(folder)
    qrels = os.path.join(folder, "qrels", f"{safe_name(split, '--split')}.tsv")  # it also names runs/<name>
    if not os.path.exists(qrels):
        have = sorted(f[:-4] for f in os.listdir(os.path.join(folder, "qrels"))) if os.path.isdir(os.path.join(folder, "qrels")) else []
        raise InputError(f"no split {split!r} (have: {', '.join(have) or 'none'})", qrels)
    name = os.path.basename(os.path.abspath(folder))  # the real name of "." or ".."
    ds = load_files(os.path.join(folder, corpus_file), os.path.join(folder, "queries.jsonl"), qrels, name, split)
    for path in sorted(glob.glob(os.path.join(folder, "corpus.*.jsonl"))):  # corpus.en.jsonl: view "en"
        ds.add_view(os.path.basename(path)[len("corpus."):-len(".jsonl")], Corpus.from_jsonl(path))
    for path in sorted(glob.glob(os.path.join(folder, "queries.*.jsonl"))):  # queries.manual.jsonl: query view
        ds.add_query_view(os.path.basename(path)[len("queries."):-len(".jsonl")], read_queries(path))
    return ds


def load_msmarco(folder, split: str = "dev.small") -> Dataset:
    """An MS MARCO passage folder: ``collection.tsv``, ``queries.<split>.tsv``, ``qrels.<split>.tsv`` (TREC format)."""
    folder, split = os.fspath(folder), safe_name(split, "--split")
    q, r = os.path.join(folder, f"queries.{split}.tsv"), os.path.join(folder, f"qrels.{split}.tsv")
    return load_files(os.path.join(folder, "collection.tsv"), q, r if os.path.exists(r) else None, "msmarco-passage", split)


def load_ir_datasets(dataset_id: str, docs_only: bool = False):
    """An ir_datasets id such as ``beir/scifact/test`` or ``msmarco-passage/dev/small``; offline once cached.
    ``docs_only`` returns just its Corpus (for a text view, e.g. ``msmarco-passage`` beside ``neumarco/fa``)."""
    import ir_datasets

    try:
        ds = ir_datasets.load(dataset_id)
    except KeyError:
        raise InputError(f"unknown dataset {dataset_id!r}: not a folder, nor an ir_datasets id") from None
    with _offline_hint(dataset_id):
        return _load_ir_dataset(ds, dataset_id, docs_only)


@contextlib.contextmanager
def _offline_hint(dataset_id: str):
    """A download that fails (no network) as one line saying what to do instead; ir_datasets' own messages (its
    retries and warnings) are held back meanwhile, and shown once the dataset has loaded, and its bars show only
    after 2 s (a download that fails at once draws none)."""
    import functools
    import logging

    import ir_datasets
    import requests
    from tqdm import std

    held, logger, init = [], logging.getLogger("ir_datasets"), std.tqdm.__init__  # the logger of all its modules
    logger.addFilter(held.append)  # a filter that returns None: nothing passes
    std.tqdm.__init__ = functools.partialmethod(init, delay=2)
    try:
        yield
    except requests.exceptions.RequestException as e:  # ir_datasets downloads what its cache lacks
        raise InputError(f"{dataset_id!r} is not in the local ir_datasets cache ({ir_datasets.util.home_path()}, "
                         f"$IR_DATASETS_HOME) and cannot be downloaded ({type(e).__name__}): download it on a machine "
                         "with network access, or give a BEIR folder") from None
    finally:
        logger.removeFilter(held.append)
        std.tqdm.__init__ = init
    for record in held:
        logger.handle(record)


def _load_ir_dataset(ds, dataset_id: str, docs_only: bool):
    import ir_datasets

    source = f"ir_datasets:{dataset_id}"
    if not ds.has_docs():
        raise InputError("this dataset id has no documents", source)

    def records():
        for doc in ds.docs_iter():
            yield doc.doc_id, getattr(doc, "title", "") or "", getattr(doc, "text", "") or doc.default_text()

    corpus = _ir_datasets_corpus(ds, dataset_id, records(), source)
    if docs_only:
        return corpus
    from .conversations import is_conversational, query_views, turns_from_records

    records = ds.queries_iter()  # streamed: MS MARCO's train queries are 800k records
    first = next(records, None)
    records = itertools.chain([first] if first is not None else [], records)
    views = query_views(turns_from_records(records)) if first is not None and is_conversational(first) else {}
    if views:  # TREC CAsT: the queries are the users' turns as said; the conversation and rewrites are views
        queries = views.pop("raw")
    else:
        queries = {q.query_id: q.text if hasattr(q, "text") else q.default_text() for q in records}
    qrels: Qrels = {}
    if ds.has_qrels():
        rows = list(ds.qrels_iter())
        known = corpus.contains([r.doc_id for r in rows])
        for n, (r, ok) in enumerate(zip(rows, known), 1):
            if r.query_id not in queries or not ok:
                raise InputError(f"qrels row {n} names an unknown {'query' if ok else 'document'}", source)
            qrels.setdefault(r.query_id, {})[r.doc_id] = int(r.relevance)
        queries = {q: t for q, t in queries.items() if q in qrels}
    parent, _, last = dataset_id.rpartition("/")
    if parent in ir_datasets.registry and ir_datasets.registry[parent].has_docs():  # beir/scifact/test: split test
        return Dataset(parent.replace("/", "-"), corpus, queries, qrels, last, query_views=views)
    return Dataset(dataset_id.replace("/", "-"), corpus, queries, qrels, None, query_views=views)  # beir/arguana


def _ir_datasets_corpus(ds, dataset_id: str, records, source: str) -> Corpus:
    """The documents of an ir_datasets dataset: read once through ``docs_iter`` (into a store in the user cache when
    large, see ``store.py``), then mapped from that store by every later load. All datasets that share a document
    collection (``msmarco-passage/train``, ``.../dev/small``) share its store."""
    import ir_datasets

    try:
        count = ds.docs_count()
    except Exception:  # some collections only know their size once downloaded
        count = None
    owner = ds.docs_namespace() or dataset_id
    key = {"ir_datasets": owner, "documents": count, "version": ir_datasets.__version__,
           "home": os.path.realpath(str(ir_datasets.util.home_path()))}
    places = store.places(f"ir_datasets:{owner}")
    found = store.find_store(places, key)
    if found is not None:
        return Corpus._mapped(found, source)
    return Corpus.from_records(records, source, keep=(places, key))


def load_dataset(source, split: str | None = None) -> Dataset:
    """Load one split of a collection.

    ``source`` is a BEIR folder (``split`` defaults to ``test``), an MS MARCO folder holding ``collection.tsv``
    (``split`` defaults to ``dev.small``), or an ir_datasets id (the split is part of the id, e.g. ``beir/scifact/test``).
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        if os.path.exists(os.path.join(source, "corpus.jsonl")):
            ds = load_beir(source, split or "test")
        elif os.path.exists(os.path.join(source, "collection.tsv")):
            ds = load_msmarco(source, split or "dev.small")
        else:
            raise InputError("not a dataset folder (no corpus.jsonl or collection.tsv)", source)
        ds.source = source
        return ds
    if source.startswith((".", os.path.sep, "~")) or os.path.exists(source):
        raise InputError("no such folder" if not os.path.exists(source) else "not a dataset folder", source)
    ds = load_ir_datasets(source if split is None else f"{source.rstrip('/')}/{split}")
    ds.source = source.rstrip("/") if split is not None or ds.split is None else source.rstrip("/").rsplit("/", 1)[0]
    return ds
