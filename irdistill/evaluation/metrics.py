"""Metrics through ranx (nDCG uses linear gains, as trec_eval and BEIR do)."""

from __future__ import annotations

import re

import pandas as pd

from ..data.runs import run_to_dict
from ..errors import InputError

RANX_METRICS = {"hits", "hit_rate", "precision", "recall", "f1", "r-precision", "mrr", "map", "ndcg", "ndcg_burges",
                "dcg", "dcg_burges", "bpref"}
MAX_CUTOFF = 2**63 - 1


def parse_metrics(spec: str | list[str]) -> list[str]:
    """``"ndcg@10,recall@100,mrr@10"`` -> ranx metric names; unknown names raise InputError."""
    names = [m.strip().lower() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    for m in names:
        base, _, cut = m.partition("@")
        if base not in RANX_METRICS or (cut and not re.fullmatch(r"[1-9][0-9]*", cut)):
            raise InputError(f"unknown metric {m!r} (known: {', '.join(sorted(RANX_METRICS))}, each with an optional @k)")
        if cut and int(cut) > MAX_CUTOFF:  # ranx's k is an int64
            raise InputError(f"metric {m!r}: the cutoff must be at most {MAX_CUTOFF} (leave out @k for the whole run)")
    if not names:
        raise InputError("no metrics given")
    return names


def _qrels(qrels: dict):
    from ranx import Qrels

    return Qrels({q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()})


def comparable_run(qrels: dict, run: pd.DataFrame, name: str | None = None):
    """A ranx Run of the judged queries only, a judged query missing from ``run`` with no documents (it scores 0).
    What ranx's ``make_comparable`` does, done on Python dicts: ranx's does it on numba's typed dicts, whose methods
    are compiled afresh in every process (4 s of CPU before the first number)."""
    from ranx import Run

    results = run_to_dict(run)
    judged = {q: results.get(q, {}) for q in qrels}
    if judged and not any(judged.values()):  # ranx needs one document somewhere: one no query judges
        judged[next(iter(judged))] = {"": 0.0}
    return Run(judged, name=name)


def evaluate_run(qrels: dict, run: pd.DataFrame, metrics) -> dict[str, float]:
    """Mean of each metric over the judged queries (a judged query missing from the run scores 0)."""
    from ranx import evaluate

    metrics = parse_metrics(metrics)
    # as typed lists: ranx's key check on its Qrels and Run compiles numba dict methods (3 s of CPU per process); the
    # keys are the same by construction, and to_typed_list orders both by query id, as ranx's own conversion does
    out = evaluate(_qrels(qrels).to_typed_list(), comparable_run(qrels, run).to_typed_list(), metrics)
    out = out if isinstance(out, dict) else {metrics[0]: out}
    return {m: float(v) for m, v in out.items()}


def compare_runs(qrels: dict, runs: dict[str, pd.DataFrame], metrics, stat_test: str = "student", max_p: float = 0.05):
    """A ranx Report: every metric of every run, with paired significance tests (superscripts name the runs beaten)."""
    from ranx import compare

    metrics = parse_metrics(metrics)
    rs = [comparable_run(qrels, df, name) for name, df in runs.items()]
    return compare(_qrels(qrels), rs, metrics=metrics, stat_test=stat_test, max_p=max_p)


def compare_run_files(paths, qrels: dict, metrics, stat_test: str = "student", max_p: float = 0.05):
    """``compare_runs`` over run files, each named by its folder (``runs/<name>/run.trec``) or file name."""
    import os

    from ..data.runs import read_run

    runs = {}
    for path in paths:
        base = os.path.basename(path)
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) if base.startswith("run.") else base
        runs[name if name not in runs else path] = read_run(path)
    return compare_runs(qrels, runs, metrics, stat_test, max_p)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain text table; floats with 4 decimals (1 from 100 up)."""
    columns = columns or list(rows[0])
    fmt = lambda v: (f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}") if isinstance(v, float) else str(v)
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(vals, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])
