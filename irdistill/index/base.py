"""What every index is, and the one registry of index kinds.

An index kind is one class in one file (``bm25.py``, ``dense.py``, ``colbert.py``, ``splade.py``), registered with
``@register_index``. Its folder holds ``meta.json``: the kind, the model it was built with, and ``key``, everything that
decides its content (corpus fingerprint, model, settings). ``open_index`` reuses a folder whose key matches and builds
it otherwise; ``load_index`` opens any folder by the kind in its ``meta.json``; ``retrieve`` searches a dataset's
queries. The CLI's ``--retriever`` and ``--kind`` choices come from the same registry.

A new kind::

    @register_index
    class MyIndex(Index):
        name = "mine"
        def settings(cls, corpus, model, kind, params): ...          # what decides the content, but the corpus
        def build(cls, corpus, path, key, model, kind, batch_size, progress, **params): ...
        def search(self, queries, k=1000, batch_size=None, progress=False): ...
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
from typing import ClassVar

from ..data.dataset import Dataset
from ..data.io import atomic_dir
from ..data.shards import parse_shard
from ..errors import InputError
from ..lazy import module
from ..models import fingerprint
from ..progress import step
from .encode import precision_key, use_local_gpu

pd = module("pandas")  # imported on first use (lazy.py)

INDEXES: dict[str, type["Index"]] = {}
DEFAULT_ROOT = os.environ.get("IRDISTILL_INDEXES", "indexes")


def register_index(cls: type["Index"]) -> type["Index"]:
    """Add an index class to the registry under ``cls.name`` (usable as a class decorator)."""
    INDEXES[cls.name] = cls
    return cls


def index_class(name: str) -> type["Index"]:
    if name not in INDEXES:
        raise InputError(f"unknown retriever {name!r} (choose from {', '.join(INDEXES)})")
    return INDEXES[name]


def safe_part(text: str) -> str:
    """``text`` as one folder name that stays in its folder: other characters than ``A-Z a-z 0-9 . _ -`` (``/``
    too) become ``_``, and a name of dots only (``..``) becomes ``_``."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    return text if text.strip(".") else "_"


def slug(name: str) -> str:
    """A folder name for a model: hub names keep their text; local folders get their name plus a hash of the path."""
    if os.path.exists(name):
        path = os.path.abspath(name).rstrip("/")
        name = f"{os.path.basename(path)}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    return safe_part(name)


def read_docids(folder) -> list[str]:
    """``docids.txt`` of an index folder: the document id of every row, one per line."""
    with open(os.path.join(folder, "docids.txt"), encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def write_docids(folder, docids: list[str]) -> None:
    with open(os.path.join(folder, "docids.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(docids) + "\n")


def read_meta(path, kind: str | None = None) -> dict:
    """``meta.json`` of an index folder; InputError if there is none or it belongs to another kind."""
    meta = os.path.join(os.fspath(path), "meta.json")
    if not os.path.exists(meta):
        raise InputError(f"not {'a ' + kind if kind else 'an irdistill'} index (no meta.json)", path)
    try:
        with open(meta, encoding="utf-8") as f:
            out = json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON ({e.msg})", meta, e.lineno) from None
    except (OSError, ValueError, RecursionError) as e:  # a folder, unreadable, not UTF-8, nested too deep
        raise InputError(f"cannot read the index's meta.json ({type(e).__name__})", meta) from None
    if not isinstance(out, dict) or not isinstance(out.get("kind"), str):
        raise InputError("not an index's meta.json: a JSON object with a 'kind'", meta)
    if kind is not None and out["kind"] != kind:
        raise InputError(f"not a {kind} index (kind {out['kind']!r})", path)
    return out


@contextlib.contextmanager
def building(path, meta: dict):
    """Yield a fresh work folder beside ``path``; when the block succeeds, ``meta.json`` is written into it and it
    replaces ``path``. An interrupted build leaves ``path`` as it was; its work folder is removed then, or by the next
    build in that folder if the process was killed (``data.io.atomic_dir``)."""
    with atomic_dir(path) as work:
        yield work
        with open(os.path.join(work, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)


class Index:
    """A searchable index of one corpus, kept in a folder (``path``) with ``meta.json`` (``meta``).

    Class attributes: ``name`` (the registry key, ``--retriever``), ``kinds`` (the ``--kind`` choices, default first),
    ``loader`` (the function that loads the kind's model by name; None for kinds without one) and ``batch_size``
    (encoding batch) and ``published`` (reference figures). ``encoder`` is the model that encodes queries: the one the index was opened with, else the one
    named in ``meta.json``, loaded on first search."""

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = ()
    loader: ClassVar = None
    batch_size: ClassVar[int] = 64
    published: ClassVar[dict[str, float]] = {}  # nDCG@10 others published for this kind, by BEIR dataset name

    def __init__(self, path):
        self.path = os.fspath(path)
        self.meta = read_meta(self.path, self.name)
        self.encoder = None

    # what each kind implements ------------------------------------------------------------------------------------
    @classmethod
    def settings(cls, corpus, model, kind: str | None, params: dict) -> dict:
        """What decides the index's content besides the corpus and the model's name and weights (see ``key``)."""
        return {}

    @classmethod
    def build(cls, corpus, path, key: dict, model, kind: str | None, batch_size: int, progress: bool = True,
              rebuild: bool = False, **params) -> "Index":
        """Build the index of ``corpus`` at ``path`` (``meta.json`` holds ``key``); ``rebuild`` also discards any
        encoding kept from an earlier, interrupted build. Kinds with a model also take ``workers`` (encoding
        processes, see ``encode.worker_pool``)."""
        raise NotImplementedError

    def search(self, queries: dict[str, str], k: int = 1000, batch_size: int | None = None,
               progress: bool = False) -> pd.DataFrame:
        """The top ``k`` documents of every query, as a run DataFrame (qid, docid, score, rank)."""
        raise NotImplementedError

    # shared -------------------------------------------------------------------------------------------------------
    @classmethod
    def load_model(cls, name: str):
        """The query/document encoder called ``name`` (None for kinds without a model)."""
        return cls.loader(name) if cls.loader else None

    @classmethod
    def key(cls, corpus, model_name: str | None, model, kind: str | None, params: dict) -> dict:
        """Everything that decides the index's content: the corpus (ids and texts), the model (name and weights),
        and the kind's ``settings``. An index folder is reused only when its key is equal."""
        named = {"model": model_name, "version": fingerprint(model_name), **precision_key()} if cls.loader else {}
        return {"corpus": corpus.fingerprint(), **named, **cls.settings(corpus, model, kind, params)}

    def query_encoder(self):
        if self.encoder is None and self.loader:
            self.encoder = self.load_model(self.meta["model"])
        return self.encoder

    def retrieve(self, dataset: Dataset, k: int = 1000, batch_size: int | None = None,
                 progress: bool = False) -> pd.DataFrame:
        """Search the queries of ``dataset``."""
        return self.search(dataset.queries, k, batch_size, progress)

    @classmethod
    def folder(cls, dataset: Dataset, model: str | None = None, kind: str | None = None, root: str = DEFAULT_ROOT) -> str:
        """Where the index of ``dataset`` lives by default: ``<root>/<collection>[/<model>]/<leaf(kind)>``."""
        model_part = [slug(model)] if model and cls.loader else []
        return os.path.join(root, safe_part(dataset.name), *model_part, cls.leaf(kind))

    @classmethod
    def leaf(cls, kind: str | None) -> str:
        """The last folder name of the default path (the kind's name; dense indexes use their FAISS kind)."""
        return cls.name

    @classmethod
    def run_name(cls, dataset: Dataset, model: str | None = None, kind: str | None = None) -> str:
        """A name for a run of this index on ``dataset`` (runs/<name>/ in the CLI)."""
        model = slug(model) if model and cls.loader else ""
        return safe_part("-".join(p for p in [dataset.name, dataset.split or "", cls.name, model] if p))


def _stable(key: dict) -> dict:
    return json.loads(json.dumps(key))  # as read back from meta.json


def open_index(dataset: Dataset, retriever: str = "bm25", model: str | None = None, kind: str | None = None,
               index: str | None = None, rebuild: bool = False, batch_size: int | None = None, progress: bool = True,
               encoder=None, workers: int = 1, **params) -> Index:
    """The ``retriever`` index of ``dataset`` (for ``model``) in the folder ``index`` (default ``Index.folder``),
    built when missing, stale or ``rebuild``. ``encoder``: the model ``model`` names, already loaded; ``workers``:
    processes that encode the corpus (one a GPU when there are GPUs)."""
    cls = index_class(retriever)
    if cls.loader and not model:
        raise InputError(f"--retriever {retriever} needs --model")
    if workers < 1 or (workers > 1 and not cls.loader):
        raise InputError(f"--workers {workers}: " + ("must be at least 1" if workers < 1 else
                                                     f"--retriever {retriever} encodes nothing"))
    try:
        inspect.signature(cls.build).bind_partial(None, None, None, None, kind, **params)
    except TypeError:
        raise InputError(f"--retriever {retriever} takes no {', '.join(sorted(params))}") from None
    if kind is not None and kind not in cls.kinds:
        raise InputError(f"unknown {retriever} index kind {kind!r} (choose from {', '.join(cls.kinds) or 'none'})")
    kind = kind or (cls.kinds[0] if cls.kinds else None)
    path = index or cls.folder(dataset, model, kind)
    if encoder is None and cls.loader:
        use_local_gpu()  # under torchrun, each rank loads the model onto its own GPU
        step(f"loading {model}", progress)
        encoder = cls.load_model(model)
    step(f"checking the index in {path} against the corpus{' and the weights' if cls.loader else ''}", progress)
    key = _stable(cls.key(dataset.corpus, model, encoder, kind, params))
    if not rebuild and os.path.exists(os.path.join(path, "meta.json")) and read_meta(path).get("key") == key:
        step(f"opening the index in {path}", progress)
        found = cls(path)
    else:
        found = cls.build(dataset.corpus, path, key, encoder, kind, batch_size or cls.batch_size, progress, rebuild,
                          **({"workers": workers} if workers > 1 else {}), **params)
        if parse_shard(None)[0] == 0:  # torchrun's first process (or no torchrun)
            from .display import remember_corpus

            remember_corpus(path, dataset.corpus)  # for `irdistill search` to show titles and text
    found.encoder = encoder
    return found


def load_index(path, model: str | None = None) -> Index:
    """Open a saved index folder of any kind; ``model`` replaces the query encoder it was built with."""
    index = saved_kind(path)(path)
    if model:
        index.encoder = index.load_model(model)
    return index


def saved_kind(path) -> type[Index]:
    """The index class of a saved index folder, from its ``meta.json`` (which must name a known kind, and the model
    of a kind that has one)."""
    meta = read_meta(path)
    where = os.path.join(os.fspath(path), "meta.json")
    if meta["kind"] not in INDEXES:
        raise InputError(f"unknown index kind {meta['kind']!r} (choose from {', '.join(INDEXES)})", where)
    cls = INDEXES[meta["kind"]]
    if cls.loader and not isinstance(meta.get("model"), str):
        raise InputError(f"a {cls.name} index's meta.json names its model", where)
    return cls


def retrieve(dataset: Dataset, retriever: str = "bm25", model: str | None = None, kind: str | None = None,
             k: int = 1000, index: str | None = None, rebuild: bool = False, batch_size: int | None = None,
             progress: bool = True, workers: int = 1, **params) -> pd.DataFrame:
    """Top-``k`` run of every query of ``dataset`` (building the index when needed; see ``open_index``)."""
    if k < 1:
        raise InputError(f"-k must be at least 1, not {k}")
    found = open_index(dataset, retriever, model, kind, index, rebuild, batch_size, progress, workers=workers, **params)
    return found.retrieve(dataset, k, batch_size, progress=progress)


def candidates(dataset: Dataset, retriever: str = "bm25", model: str | None = None, k: int = 100,
               positives: bool = False, queries: int | None = None, seed: int = 0, shard: tuple[int, int] = (0, 1),
               **options) -> pd.DataFrame:
    """First-stage candidates for a teacher to score: the top ``k`` of ``retrieve``; with ``positives``, each
    query's judged-relevant documents that the retriever missed are appended (training candidates must hold them).
    ``queries``: a seeded sample of that many of the dataset's queries (e.g. 50,000 of MS MARCO's 500k).
    ``shard``: ``(i, n)``, only the sampled queries of shard i of n (``data.shards.in_shard``, as ``score`` splits)."""
    import random
    from dataclasses import replace

    from ..data.runs import add_positives
    from ..data.shards import in_shard

    if queries is not None and queries < len(dataset.queries):
        keep = sorted(random.Random(seed).sample(sorted(dataset.queries), queries))
        dataset = replace(dataset, queries={q: dataset.queries[q] for q in keep})
    if shard[1] > 1:
        dataset = replace(dataset, queries={q: t for q, t in dataset.queries.items() if in_shard(q, shard)})
    run = retrieve(dataset, retriever, model, k=k, **options)
    return add_positives(run, dataset.qrels) if positives else run
