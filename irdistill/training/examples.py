"""Training examples from the score cache: per query, a positive and N negatives with the teacher's scores.

The examples hold ids and scores only; texts are looked up when a batch is read (``as_hf_dataset`` sets a transform
that reads them from the corpus by id), so a dataset of millions of examples stays small, and the cache is read a
block of queries at a time. With a ``regularizer`` (a second teacher in the cache, e.g. the student's own starting
model as a bi-encoder teacher), each example carries that teacher's scores of the same documents too, for the
``regularizer`` loss. With ``remove_query``, a query copied from a document (the inverse cloze task's sentence) is
cut out of that document's text at batch time, most of the time, as Lee et al. (2019) do: otherwise the student
learns to match the copied words.

With ``strategy: sample`` (Random-Sampling KD, ``cache/sparse.py``), an example keeps its query's whole list of
negatives and draws ``negatives`` of them anew each epoch, with replacement, from the teacher's distribution
``p = softmax(minmax(t) / temperature)`` over the positive and the negatives (or from a sampled cache entry, by its
weights). Each drawn column j carries two importance weights beside the teacher's score: ``w_j``, whose sum over
the draws estimates the teacher's mass without bias, and ``m_j``, whose sum of ``m_j f(j)`` estimates the sum of
``f`` over the whole list (the student's normaliser); the positive carries its own ``p`` and 1. The weighted
listwise KL reads them (``losses/listwise_kl.py``).
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass

import numpy as np

from ..cache.scores import ScoreCache
from ..cache.sparse import log_distribution
from ..data.dataset import Dataset
from ..errors import InputError

log = logging.getLogger(__name__)
STRATEGIES = ("top", "random", "teacher", "sample")
SAMPLING_REFERENCE = "Anshumann et al., 2025: Sparse Logit Sampling: Accelerating Knowledge Distillation in LLMs"
EPOCHS: dict[str, int] = {}  # the epoch each sampling dataset draws for (``EpochCallback``), by the dataset's token


@dataclass
class ExampleConfig:
    teacher: str                    # teacher id in the cache
    negatives: int = 7              # negatives per example (each example has 1 + negatives documents)
    strategy: str = "top"           # top: the teacher's highest-scored; random: uniform; teacher: p ~ exp(z / temperature);
                                    # sample: drawn anew each epoch from p ~ exp(minmax(t) / temperature), weighted
    temperature: float = 1.0        # teacher: on per-query z-scored teacher scores; sample: on min-max scaled ones
    fn_margin: float | None = None  # false-negative filter: drop negatives scored above t(positive) - fn_margin
    positives: str = "labels"       # labels: judged relevant (grade > 0); teacher: the teacher's top document
    seed: int = 0
    text_view: str | None = None    # the student reads this text view of the documents (default: the corpus)
    regularizer: str | None = None  # a second teacher id in the cache: its scores of the same documents as well
    remove_query: float = 0.0       # cut a query's text out of a document that holds it verbatim, with this probability
    query_view: str | None = None   # the student reads this view of the queries (e.g. a conversation; default: the queries)


def build_examples(dataset: Dataset, cache: ScoreCache, cfg: ExampleConfig, block: int = 10_000) -> list[dict]:
    """``[{"query_id", "document_ids": [pos, neg_1..], "scores": [t_pos, t_neg_1..]}]``, one per (query, positive);
    with ``cfg.regularizer``, ``"scores"`` is ``[[t_pos, t_neg_1..], [r_pos, r_neg_1..]]`` (teacher, regulariser) and
    examples with a document the regulariser has not scored are skipped.

    The cache is read ``block`` queries at a time (``ScoreCache.read_blocks``; the regulariser's scores of the same
    queries beside), so its size is bounded by the examples drawn, not by the pairs scored."""
    if cfg.strategy not in STRATEGIES:
        raise InputError(f"unknown sampling strategy {cfg.strategy!r} (choose from {', '.join(STRATEGIES)})")
    described = {key: cache.described(key) for key in filter(None, (cfg.teacher, cfg.regularizer))}
    for key, desc in described.items():  # scores made from other texts under these ids
        cache.check_texts(key, dataset.query_texts(desc.get("query_view")))
    sampled = cfg.strategy == "sample" and _sampled_entry(described[cfg.teacher], cfg)
    rng = np.random.default_rng(cfg.seed)
    out, queries, referenced = [], 0, 0
    skipped = {"no scored positive": 0, "too few negatives": 0, "no regulariser score": 0}
    columns = ("qid", "docid", "score", "weight") if sampled else ("qid", "docid", "score")
    for scores in cache.read_blocks(cfg.teacher, qids=dataset.queries, queries=block, columns=columns):
        reference = _scores_by_pair(cache, cfg.regularizer, scores["qid"].unique()) if cfg.regularizer else None
        referenced += len(reference or ())
        for qid, group in scores.groupby("qid", sort=True):
            queries += 1
            _query_examples(qid, group, dataset.qrels.get(qid, {}), cfg, rng, out, skipped, reference)
    if not queries:
        raise InputError(f"the cache holds no scores of teacher {cfg.teacher!r} for the {dataset.split} queries",
                         cache.folder)
    if cfg.regularizer and not referenced:
        raise InputError(f"the cache holds no scores of regulariser {cfg.regularizer!r} for these queries",
                         cache.folder)
    log.info("%d examples from %d queries; skipped: %s", len(out), queries, skipped)
    if not out:
        raise InputError(f"no training examples (skipped: {skipped}); were the positives among the scored candidates?")
    return out


def _query_examples(qid: str, group, judged: dict, cfg: ExampleConfig, rng, out: list, skipped: dict,
                    reference: dict | None) -> None:
    docs, t = group["docid"].to_numpy(), group["score"].to_numpy(np.float64)
    relevant = np.array([judged.get(d, 0) > 0 for d in docs])
    if cfg.positives == "teacher":
        pos_idx = [int(np.argmax(t))]
        relevant = np.zeros(len(docs), bool)
        relevant[pos_idx] = True
    else:
        pos_idx = list(np.flatnonzero(relevant))
    if not pos_idx:
        skipped["no scored positive"] += 1
        return
    for p in pos_idx:
        neg = np.flatnonzero(~relevant)
        if cfg.fn_margin is not None:
            neg = neg[t[neg] < t[p] - cfg.fn_margin]
        if len(neg) < (1 if cfg.strategy == "sample" else cfg.negatives):  # sample: drawn with replacement
            skipped["too few negatives"] += 1
            continue
        if cfg.strategy == "sample":
            out.append(_pool(qid, docs, t, p, neg, cfg, group["weight"].to_numpy(np.float64)
                             if "weight" in group else None))
            continue
        chosen = _sample(neg, t, cfg, rng)
        ids, targets = [docs[p], *docs[chosen]], [float(t[p]), *map(float, t[chosen])]
        if reference is not None:
            if any((qid, d) not in reference for d in ids):
                skipped["no regulariser score"] += 1
                continue
            targets = [targets, [reference[qid, d] for d in ids]]
        out.append({"query_id": qid, "document_ids": ids, "scores": targets})


def _sampled_entry(desc: dict, cfg: ExampleConfig) -> bool:
    """Whether ``cfg.teacher`` (described by ``desc``) is a sampled sparse entry (its rows carry weights); its
    temperature must be ``cfg.temperature``, the one the examples and the loss take the teacher's distribution at."""
    if cfg.regularizer:
        raise InputError("examples: strategy sample takes no regularizer (its weights and the regulariser's scores "
                         "would share the labels)")
    if desc.get("kind") != "sparse" or desc.get("keep") != "sample":
        return False
    if desc["temperature"] != cfg.temperature:
        raise InputError(f"option examples.temperature: teacher {cfg.teacher!r} was sampled at temperature "
                         f"{desc['temperature']:g}, not {cfg.temperature:g}")
    return True


def _pool(qid: str, docs, t, p: int, neg, cfg: ExampleConfig, weight) -> dict:
    """An example of strategy ``sample``: the positive, then every negative, with the masses ``a`` (estimating the
    teacher's probability) and ``b`` (estimating how many of the list's candidates a row stands for) that
    ``DrawNegatives`` draws by. From a full list: ``a = p``, ``b = 1``; from a sampled entry (``t = log p``): its
    weights, and ``b = weight / p``."""
    rows = np.array([p, *neg])
    if weight is None:
        a, b = np.exp(log_distribution(t[rows], cfg.temperature)), np.ones(len(rows))
    else:
        a, b = weight[rows], weight[rows] / np.exp(t[rows])
    return {"query_id": qid, "document_ids": list(docs[rows]), "scores": [float(x) for x in t[rows]],
            "masses": [a.tolist(), b.tolist()]}


class DrawNegatives:
    """The batch transform of strategy ``sample``: each example's ``k`` negatives drawn with replacement from its
    pool by ``a`` (the teacher's probability), anew each epoch (``EPOCHS[token]``, set by ``EpochCallback``) and
    seeded by (seed, epoch, query, positive); the labels become (teacher score, w, m) per column.

    >>> draw = DrawNegatives(k=2, seed=0, token="doc")
    >>> batch = {"query_id": ["q"], "document_ids": [["p", "n1", "n2"]], "scores": [[3.0, 2.0, 1.0]],
    ...          "masses": [[[0.5, 0.4, 0.1], [1.0, 1.0, 1.0]]]}
    >>> out = draw(batch)
    >>> out["document_ids"], out["scores"]  # w: the positive's p, then 0.5 / 2 each; m: 1, then 1 / (2 * 0.8)
    ([['p', 'n1', 'n1']], [[[3.0, 2.0, 2.0], [0.5, 0.25, 0.25], [1.0, 0.625, 0.625]]])
    """

    def __init__(self, k: int, seed: int, token: str):
        self.k, self.seed, self.token = k, seed, token

    def __call__(self, batch: dict) -> dict:
        epoch = EPOCHS.get(self.token, 0)
        ids, labels = [], []
        for qid, docs, t, (a, b) in zip(batch["query_id"], batch["document_ids"], batch["scores"], batch["masses"]):
            a, b, t = np.asarray(a), np.asarray(b), np.asarray(t)
            mass = a[1:].sum()
            seed = hashlib.sha1(f"{self.seed}\0{epoch}\0{qid}\0{docs[0]}".encode()).hexdigest()[:15]
            drawn = 1 + np.random.default_rng(int(seed, 16)).choice(len(a) - 1, self.k, p=a[1:] / mass)
            ids.append([docs[0], *(docs[i] for i in drawn)])
            w = [a[0], *([mass / self.k] * self.k)]
            m = [b[0], *(b[drawn] * mass / (self.k * a[drawn]))]
            labels.append([[float(x) for x in t[[0, *drawn]]], [float(x) for x in w], [float(x) for x in m]])
        out = {k: v for k, v in batch.items() if k != "masses"}
        return {**out, "document_ids": ids, "scores": labels}


def epoch_callback(token: str):
    """A trainer callback that tells ``DrawNegatives`` of dataset ``token`` which epoch begins (resumed runs too)."""
    from transformers import TrainerCallback

    class EpochCallback(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            EPOCHS[token] = int((state.epoch or 0.0) + 1e-6)

    return EpochCallback()


def _scores_by_pair(cache: ScoreCache, teacher: str, qids) -> dict:
    """``{(qid, docid): score}`` of a cached teacher for ``qids``."""
    qids = sorted(qids)
    df = cache.read(teacher, qids=qids, bounds=(qids[0], qids[-1]))
    return dict(zip(zip(df["qid"], df["docid"]), df["score"].astype(float)))


def _sample(neg: np.ndarray, t: np.ndarray, cfg: ExampleConfig, rng) -> np.ndarray:
    if cfg.strategy == "top":
        return neg[np.argsort(-t[neg], kind="stable")[: cfg.negatives]]
    if cfg.strategy == "random":
        return rng.choice(neg, cfg.negatives, replace=False)
    z = (t[neg] - t[neg].mean()) / (t[neg].std() + 1e-9) / cfg.temperature
    p = np.exp(z - z.max())
    return rng.choice(neg, cfg.negatives, replace=False, p=p / p.sum())


def as_hf_dataset(examples: list[dict], dataset: Dataset, text_view: str | None = None, remove_query: float = 0.0,
                  seed: int = 0, draw: int | None = None, query_view: str | None = None):
    """A ``datasets.Dataset`` of ids and scores whose rows read as ``query, document_1 .. document_N, scores``
    (documents from ``text_view``, the corpus by default). Texts are looked up in the corpus when a batch is read
    (``ResolveTexts``), so no copy of the documents' texts is made; unknown ids fail here, before training.
    ``query_view``: the queries' texts from that view. ``remove_query``: as ``ExampleConfig``'s, each (query,
    document) pair drawn once from ``seed``. ``draw``: the examples are pools of strategy ``sample``, ``draw``
    negatives drawn from each at batch time (``DrawNegatives``; the dataset's ``epoch_token`` names it for
    ``epoch_callback``)."""
    import datasets
    import pyarrow as pa

    corpus = dataset.view(text_view)
    flat = pa.array([d for e in examples for d in e["document_ids"]], pa.string())
    rows = corpus.lookup(flat)
    if len(rows) and rows.min() < 0:
        raise KeyError(f"unknown document id {flat[int(np.argmin(rows))].as_py()!r} in {corpus.source}")
    texts = dataset.query_texts(query_view)
    queries = {q: texts[q] for q in sorted({e["query_id"] for e in examples})}
    ds = datasets.Dataset.from_list(examples)
    token = f"{id(ds)}-{seed}"
    sampler = DrawNegatives(draw, seed, token) if draw else None
    ds.set_transform(ResolveTexts(queries, corpus, remove_query, seed, sampler))
    ds.epoch_token = token
    return ds


class ResolveTexts:
    """The batched transform of ``as_hf_dataset``: ``query_id`` to ``query``, ``document_ids`` to ``document_1`` ..
    ``document_N`` (texts from the corpus, by id), ``scores`` kept; the columns sentence-transformers' ``resolve_ids``
    makes, without its copy of every text. Picklable (a corpus kept in a store pickles as its folder).

    >>> docs = {"d1": "Intro. Cats purr when content. Dogs bark.", "d2": "Cats."}
    >>> class Corpus:
    ...     def texts(self, ids): return [docs[d] for d in ids]
    >>> resolve = ResolveTexts({"q": "Cats purr when content."}, Corpus(), remove_query=1.0)
    >>> resolve({"query_id": ["q"], "document_ids": [["d1", "d2"]]})
    {'query': ['Cats purr when content.'], 'document_1': ['Intro. Dogs bark.'], 'document_2': ['Cats.']}
    """

    def __init__(self, queries: dict[str, str], corpus, remove_query: float = 0.0, seed: int = 0, draw=None):
        self.queries, self.corpus, self.remove_query, self.seed, self.draw = queries, corpus, remove_query, seed, draw

    def __call__(self, batch: dict) -> dict:
        if self.draw is not None:
            batch = self.draw(batch)
        lists = batch["document_ids"]
        width = len(lists[0]) if lists else 0
        if any(len(row) != width for row in lists):
            raise ValueError(f"examples hold differing numbers of documents ({sorted({len(r) for r in lists})})")
        ids = [d for row in lists for d in row]
        texts = self.corpus.texts(ids) if width else []
        out = {"query": [self.queries[q] for q in batch["query_id"]]}
        if self.remove_query > 0:
            texts = [self.uncopied(out["query"][i // width], batch["query_id"][i // width], d, text)
                     for i, (d, text) in enumerate(zip(ids, texts))]
        out.update({f"document_{i + 1}": texts[i::width] for i in range(width)})
        if "scores" in batch:
            out["scores"] = batch["scores"]
        return out

    def uncopied(self, query: str, qid: str, docid: str, text: str) -> str:
        """``text`` without ``query`` where it holds it verbatim (spaces aside), with probability ``remove_query``."""
        query, flat = " ".join(query.split()), " ".join(text.split())
        drawn = lambda: random.Random(f"{self.seed}\0{qid}\0{docid}").random() < self.remove_query
        if not query or query not in flat or not drawn():
            return text
        return " ".join(flat.replace(query, " ", 1).split())
