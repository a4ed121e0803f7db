"""``write_report``: one self-contained HTML page (figures inlined as base64 PNG, and written beside it) about a set of
runs on one dataset: metrics with paired significance against a baseline, per-query deltas, recall@k curves, teacher
score distributions and teacher-vs-student scatter from a score cache, and training loss curves."""

from __future__ import annotations

import base64
import html
import io
import json
import os

import numpy as np
import pandas as pd

from ..data.io import atomic_path, undo_on_error
from ..data.runs import run_to_dict
from ..errors import InputError
from .metrics import _qrels, compare_runs, evaluate_run, parse_metrics

RECALL_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
MAX_POINTS = 20_000  # scatter points per panel (a random sample beyond that)


def run_names(paths) -> dict[str, str]:
    """A short name per run file: its folder for ``runs/<name>/run.trec``, else the file name without extension."""
    out = {}
    for path in paths:
        base = os.path.basename(path)
        name = os.path.basename(os.path.dirname(os.path.abspath(path))) if base.startswith("run.") else os.path.splitext(base)[0]
        out[name if name not in out else path] = path
    return out


def load_runs(paths) -> dict[str, pd.DataFrame]:
    from ..data import read_run

    return {name: read_run(path) for name, path in run_names(paths).items()}


def per_query(qrels: dict, run: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` of every judged query (a query missing from the run scores 0), indexed by qid."""
    from ranx import Run, evaluate

    r = Run(run_to_dict(run))
    evaluate(_qrels(qrels), r, metric, make_comparable=True)
    return pd.Series(r.scores[metric], dtype=float).sort_index()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, output: str, name: str) -> tuple[str, str]:
    """Write ``name``.png beside the page; return (file name, base64 PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    with atomic_path(os.path.join(output, name + ".png")) as tmp, open(tmp, "wb") as f:
        f.write(buf.getvalue())
    return name + ".png", base64.b64encode(buf.getvalue()).decode()


def metrics_table(qrels: dict, runs: dict[str, pd.DataFrame], baseline: str, metrics: list[str],
                  stat_test: str = "student", max_p: float = 0.05) -> list[dict]:
    """One row per run: each metric's mean, and its paired-test p-value and wins/ties/losses against ``baseline``."""
    report = compare_runs(qrels, runs, metrics, stat_test, max_p).to_dict()
    rows = []
    for name in runs:
        row = {"run": name}
        for m in metrics:
            row[m] = float(report[name]["scores"][m])
            if name != baseline:
                row[m + " p"] = float(report[name]["comparisons"][baseline][m])
                wtl = report[name]["win_tie_loss"][baseline][m]
                row[m + " W/T/L"] = f"{wtl['W']}/{wtl['T']}/{wtl['L']}"
        rows.append(row)
    return rows


def _table_html(rows: list[dict], metrics: list[str], baseline: str, max_p: float) -> str:
    head = "".join(f"<th>{html.escape(m)}</th><th>p vs baseline</th><th>W/T/L</th>" for m in metrics)
    body = []
    for r in rows:
        cells = [f"<td>{html.escape(r['run'])}{' (baseline)' if r['run'] == baseline else ''}</td>"]
        for m in metrics:
            p = r.get(m + " p")
            mark = " *" if p is not None and p < max_p else ""
            shown = "" if p is None else "n/a" if np.isnan(p) else f"{p:.3g}"  # n/a: the runs tie on every query
            cells.append(f"<td>{r[m]:.4f}{mark}</td><td>{shown}</td><td>{r.get(m + ' W/T/L', '')}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr><th>run</th>{head}</tr>{''.join(body)}</table>"


def plot_deltas(qrels, runs, baseline, metric, output):
    """Per-query ``metric`` of each run minus the baseline's, sorted: where a run gains and loses."""
    plt = _plt()
    base = per_query(qrels, runs[baseline], metric)
    others = [n for n in runs if n != baseline]
    fig, axes = plt.subplots(len(others), 1, figsize=(8, 2.6 * len(others)), squeeze=False)
    for ax, name in zip(axes[:, 0], others):
        delta = (per_query(qrels, runs[name], metric) - base).sort_values(ascending=False).to_numpy()
        colors = np.where(delta > 0, "tab:green", np.where(delta < 0, "tab:red", "tab:gray"))
        ax.bar(np.arange(len(delta)), delta, width=1.0, color=colors)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{name} - {baseline}: {int((delta > 0).sum())} queries up, {int((delta < 0).sum())} down", fontsize=9)
        ax.set_ylabel(f"delta {metric}")
    axes[-1, 0].set_xlabel("queries, sorted by delta")
    fig.tight_layout()
    return _save(fig, output, "deltas")


def plot_recall(qrels, runs, output, ks=RECALL_KS):
    """Recall@k of every run for k up to the deepest run."""
    plt = _plt()
    depth = max(int(df.groupby("qid").size().max()) for df in runs.values())
    ks = [k for k in ks if k <= depth] or [depth]
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, run in runs.items():
        scores = evaluate_run(qrels, run, [f"recall@{k}" for k in ks])
        ax.plot(ks, [scores[f"recall@{k}"] for k in ks], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, output, "recall")


def _teacher_scores(cache, teacher: str, qids) -> pd.DataFrame:
    scores = cache.read(teacher, qids=qids)
    if scores.empty:
        raise InputError(f"teacher {teacher!r} has no scores for the report's queries", cache.folder)
    return scores


def plot_teachers(cache, teachers, qids, output):
    """Histogram of each teacher's cached scores of the report's queries (to choose temperatures, normalisation)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(teachers), figsize=(4.2 * len(teachers), 3.2), squeeze=False)
    for ax, t in zip(axes[0], teachers):
        s = _teacher_scores(cache, t, qids)["score"].to_numpy()
        ax.hist(s, bins=50, color="tab:blue")
        ax.set_title(f"{t[:40]}\nn={len(s)} mean={s.mean():.3g} sd={s.std():.3g}", fontsize=8)
        ax.set_xlabel("teacher score")
    axes[0, 0].set_ylabel("pairs")
    fig.tight_layout()
    return _save(fig, output, "teacher_scores")


def plot_scatter(cache, teachers, runs, qids, output, seed: int = 0):
    """Teacher score against each run's score of the same (query, document) pairs, with Spearman's rho."""
    plt = _plt()
    fig, axes = plt.subplots(len(teachers), len(runs), figsize=(3.6 * len(runs), 3.2 * len(teachers)), squeeze=False)
    for i, t in enumerate(teachers):
        teacher = _teacher_scores(cache, t, qids)
        for j, (name, run) in enumerate(runs.items()):
            ax = axes[i, j]
            pairs = teacher.merge(run[["qid", "docid", "score"]], on=["qid", "docid"], suffixes=("_teacher", "_run"))
            if len(pairs) > MAX_POINTS:
                pairs = pairs.sample(MAX_POINTS, random_state=seed)
            if len(pairs) > 1:
                ax.scatter(pairs["score_run"], pairs["score_teacher"], s=3, alpha=0.3)
                rho = pairs["score_run"].rank().corr(pairs["score_teacher"].rank())
                ax.set_title(f"{name} (n={len(pairs)}, rho={rho:.2f})", fontsize=8)
            else:
                ax.set_title(f"{name}: no shared pairs", fontsize=8)
            ax.set_xlabel("run score", fontsize=8)
            ax.set_ylabel(f"{t[:24]}", fontsize=8)
    fig.tight_layout()
    return _save(fig, output, "teacher_vs_run")


def read_loss(folder) -> list[dict]:
    path = os.path.join(folder, "loss.jsonl")
    if not os.path.exists(path):
        raise InputError("no loss.jsonl (not a training output folder)", folder)
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_losses(folders, output):
    """Training loss of each folder's ``loss.jsonl`` overlaid, and any dev nDCG logged during training beside it."""
    plt = _plt()
    histories = {os.path.basename(os.path.normpath(f)): read_loss(f) for f in folders}
    dev = {n: [(h["step"], v) for h in hist for k, v in h.items() if k.startswith("eval_") and "ndcg" in k]
           for n, hist in histories.items()}
    panels = 2 if any(dev.values()) else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.6), squeeze=False)
    for name, hist in histories.items():
        rows = [h for h in hist if "loss" in h and "step" in h]
        axes[0, 0].plot([h["step"] for h in rows], [h["loss"] for h in rows], label=name)
        if panels == 2 and dev[name]:
            axes[0, 1].plot(*zip(*dev[name]), marker="o", label=name)
    axes[0, 0].set_xlabel("step")
    axes[0, 0].set_ylabel("training loss")
    axes[0, 0].legend(fontsize=8)
    if panels == 2:
        axes[0, 1].set_xlabel("step")
        axes[0, 1].set_ylabel("dev nDCG")
        axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, output, "loss")


def write_report(output, qrels: dict, runs: dict[str, pd.DataFrame], baseline: str | None = None,
                 metrics="ndcg@10,recall@100,mrr@10", cache=None, teachers=(), training=(), title: str = "irdistill report",
                 stat_test: str = "student", max_p: float = 0.05) -> str:
    """Write ``output/index.html`` (and its figures as PNG files beside it); return the page's path.

    ``runs``: name -> run DataFrame; ``baseline``: the run the others are tested against (default: the first);
    ``cache`` (a ScoreCache or folder) and ``teachers`` (ids in it): score histograms and teacher-vs-run scatter;
    ``training``: training output folders whose ``loss.jsonl`` curves are overlaid."""
    from ..cache import ScoreCache

    metrics = parse_metrics(metrics)
    if not runs:
        raise InputError("no runs to report")
    baseline = baseline or next(iter(runs))
    if baseline not in runs:
        raise InputError(f"baseline {baseline!r} is not one of the runs ({', '.join(runs)})")
    if teachers and cache is None:
        raise InputError("teachers given without a cache")
    output = os.fspath(output)
    with undo_on_error(output):  # a failing figure leaves no folder, nor half a report
        rows = metrics_table(qrels, runs, baseline, metrics, stat_test, max_p)
        parts = [f"<h1>{html.escape(title)}</h1>",
                 f"<p>{len(runs)} runs, {len(qrels)} judged queries; paired {stat_test} t-test against "
                 f"<b>{html.escape(baseline)}</b>, * p &lt; {max_p}.</p>",
                 _table_html(rows, metrics, baseline, max_p)]
        figures = []
        if len(runs) > 1:
            figures.append((f"Per-query {metrics[0]} against {baseline}", plot_deltas(qrels, runs, baseline, metrics[0], output)))
        figures.append(("Recall@k", plot_recall(qrels, runs, output)))
        if teachers:
            cache = cache if isinstance(cache, ScoreCache) else ScoreCache(cache)
            figures.append(("Teacher score distributions", plot_teachers(cache, list(teachers), list(qrels), output)))
            figures.append(("Teacher against run scores (same pairs)", plot_scatter(cache, list(teachers), runs, list(qrels), output)))
        if training:
            figures.append(("Training loss", plot_losses(list(training), output)))
        for heading, (name, data) in figures:
            parts.append(f"<h2>{html.escape(heading)}</h2><img alt=\"{name}\" src=\"data:image/png;base64,{data}\">")
        page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">"
                f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
                "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
                "td:first-child{text-align:left}img{max-width:100%}</style></head><body>"
                + "\n".join(parts) + "</body></html>\n")
        path = os.path.join(output, "index.html")
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        return path
