"""Sparse teacher entries: keep K of each query's scored candidates, the teacher's top K or K draws from its
distribution with importance weights (Random-Sampling KD: Anshumann et al., 2025, "Sparse Logit Sampling:
Accelerating Knowledge Distillation in LLMs"). Keeping the top K makes a listwise target that puts no mass on the
rest of the list (a biased target); a weighted sample estimates the full list's target without bias.

The sample of a query: ``p = softmax(minmax(t) / temperature)`` over all its cached candidates. Its labelled
positives (``exact``) are kept as they are; K draws with replacement from ``p`` over the other candidates pick the
rest. Each kept row stores

- ``score  = log p_i``, computed on the full list (it orders the query's documents as the teacher does);
- ``weight = p_i`` for a row kept exactly, ``c_i (1 - P_exact) / K`` for a row drawn ``c_i`` times,

so ``E[weight_i] = p_i`` for every candidate (a candidate not kept weighs 0): ``sum_kept weight_i f(i)`` estimates
``sum_i p_i f(i)`` without bias, and ``sum_kept (weight_i / p_i) g(i)`` estimates ``sum_i g(i)``. Training reads
both (``strategy: sample`` in ``training/examples.py``; the weighted listwise KL in ``losses/listwise_kl.py``).

>>> import numpy as np
>>> rows = draw(np.array([3.0, 1.0, 0.0, 2.0]), k=8, temperature=0.5, exact=np.array([False, False, False, True]),
...             rng=np.random.default_rng(0))
>>> [(i, round(w, 3)) for i, w in sorted(rows)]  # candidate 3 (a positive) weighs p_3; 0 drawn 5 times, 1 three
[(0, 0.457), (1, 0.274), (3, 0.268)]
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ..errors import InputError
from ..progress import bar
from .scores import ScoreCache

KEEP = ("sample", "top")


def sparsify(cache: ScoreCache, teacher: str, dataset, k: int, keep: str = "sample", temperature: float = 1.0,
             seed: int = 0, positives: bool = True, block: int = 10_000, progress: bool = True) -> str:
    """A sparse entry of ``teacher`` for the queries of ``dataset`` (its texts key the scores): per query its top
    ``k`` (``keep="top"``, the teacher's scores as they are) or ``k`` draws from its distribution at ``temperature``
    (``keep="sample"``, log-probabilities and importance weights, as the module says). With ``positives``, a query's
    labelled positives are kept as well (exactly). Returns the new entry's cache key; a rerun (or a killed run) does
    only the queries the entry lacks, and other labels or more scores of the source make another entry."""
    if keep not in KEEP:
        raise InputError(f"keep must be one of {', '.join(KEEP)}, not {keep!r}")
    if k < 1 or not temperature > 0:
        raise InputError(f"sparsify needs k >= 1 and a temperature > 0 (not k={k}, temperature={temperature})")
    source = cache.describe(teacher)
    # keyed by what makes it: the source's scores (its content key, and how many pairs it holds: a deeper run of the
    # same teacher makes another entry), the settings, and the labels kept exactly
    settings = {"source": teacher, "source_pairs": cache.count_pairs(teacher), "keep": keep, "k": k,
                "positives": dataset.fingerprint()["qrels"] if positives else False,
                **({"temperature": temperature, "normalize": "minmax", "seed": seed} if keep == "sample" else {})}
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    key = f"{keep}{k}-{digest}@{teacher.rpartition('@')[2]}"
    scale = "log-probability" if keep == "sample" else source.get("scale")
    cache.register(key, {"kind": "sparse", **settings, "scale": scale, "collection": source.get("collection")})
    done = cache.scored_qids(key, dataset.queries)
    todo = [q for q in dataset.queries if q not in done]
    with bar(total=len(todo), desc=f"{keep} {k} of {teacher}", unit="query", show=progress) as pbar:
        for scores in cache.read_blocks(teacher, qids=todo, queries=block):
            qids, docids, values, weights = [], [], [], []
            for qid, group in scores.groupby("qid", sort=True):
                docs, t = group["docid"].to_numpy(), group["score"].to_numpy(np.float64)
                judged = dataset.qrels.get(qid, {})
                exact = np.array([positives and judged.get(d, 0) > 0 for d in docs])
                if keep == "top":
                    picked = [(i, None) for i in np.flatnonzero(exact)] + \
                             [(i, None) for i in np.flatnonzero(~exact)[np.argsort(-t[~exact], kind="stable")[:k]]]
                else:
                    rng = np.random.default_rng(int(hashlib.sha1(f"{seed}\0{qid}".encode()).hexdigest()[:15], 16))
                    log_p = log_distribution(t, temperature)
                    picked = draw(t, k, temperature, exact, rng, np.exp(log_p))
                for i, w in picked:
                    qids.append(qid)
                    docids.append(docs[i])
                    values.append(t[i] if keep == "top" else log_p[i])
                    weights.append(w)
            cache.commit(key, qids, docids, values, {q: dataset.queries[q] for q in set(qids)},
                         None if keep == "top" else weights)
            pbar.update(scores["qid"].nunique())
    if not cache.scored_qids(key):
        raise InputError(f"the cache holds no scores of teacher {teacher!r} for the {dataset.split} queries",
                         cache.folder)
    return key


def draw(t: np.ndarray, k: int, temperature: float, exact: np.ndarray, rng, p: np.ndarray | None = None
         ) -> list[tuple[int, float]]:
    """``[(candidate, weight)]`` of one query (scores ``t``): the ``exact`` ones with weight ``p_i``, then ``k`` draws
    with replacement from ``p`` over the others, each distinct one with weight ``c_i (1 - P_exact) / k``. ``p``: the
    teacher's distribution when the caller has it already (``log_distribution``)."""
    p = np.exp(log_distribution(t, temperature)) if p is None else p
    out = [(int(i), float(p[i])) for i in np.flatnonzero(exact)]
    rest = np.flatnonzero(~exact)
    if not len(rest):
        return out
    mass = float(p[rest].sum())
    counts = rng.multinomial(k, p[rest] / mass)
    return out + [(int(i), float(c * mass / k)) for i, c in zip(rest, counts) if c]


def log_distribution(t: np.ndarray, temperature: float) -> np.ndarray:
    """``log softmax(minmax(t) / temperature)``: the teacher's distribution over one query's list, as sampled."""
    return log_softmax(minmax(t) / temperature)


def minmax(t: np.ndarray) -> np.ndarray:
    lo, hi = t.min(), t.max()
    return (t - lo) / max(hi - lo, 1e-9)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    return z - math.log(np.exp(z).sum())
