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
from ..errors import InputError
from .metrics import _qrels, comparable_run, compare_runs, evaluate_run, parse_metrics

RECALL_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
MAX_POINTS = 20_000  # scatter points per panel (a random sample beyond that)
WIDTH = 11.0  # inches at DPI: every figure is drawn as wide as the page shows it (1,100 px), fonts at reading size
DPI = 100
FONTS = {"font.size": 13, "axes.titlesize": 13, "axes.labelsize": 13, "xtick.labelsize": 11, "ytick.labelsize": 11,
         "legend.fontsize": 11}


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
    from ranx import evaluate

    r = comparable_run(qrels, run)
    evaluate(_qrels(qrels), r, metric)
    return pd.Series(r.scores[metric], dtype=float).sort_index()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(FONTS)
    return plt


def _save(fig, output: str, name: str) -> tuple[str, str]:
    """Write ``name``.png beside the page; return (file name, base64 PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
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


def per_query_deltas(qrels, runs, baseline, metric) -> dict[str, np.ndarray]:
    """Per-query ``metric`` of each other run minus the baseline's, sorted from gain to loss."""
    base = per_query(qrels, runs[baseline], metric)
    return {name: (per_query(qrels, run, metric) - base).sort_values(ascending=False).to_numpy()
            for name, run in runs.items() if name != baseline}


def plot_deltas(deltas: dict[str, np.ndarray], baseline, metric, output):
    """Bars of the runs' per-query deltas (``per_query_deltas``) that differ from the baseline somewhere: where a run
    gains and loses. None when every run ties the baseline on every query (the page says so instead of an empty plot)."""
    moved = {n: d for n, d in deltas.items() if np.any(d != 0)}
    if not moved:
        return None
    plt = _plt()
    fig, axes = plt.subplots(len(moved), 1, figsize=(WIDTH, 3.2 * len(moved)), squeeze=False)
    for ax, (name, delta) in zip(axes[:, 0], moved.items()):
        colors = np.where(delta > 0, "tab:green", np.where(delta < 0, "tab:red", "tab:gray"))
        ax.bar(np.arange(len(delta)), delta, width=1.0, color=colors)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{name} - {baseline}: {int((delta > 0).sum())} queries up, {int((delta == 0).sum())} tied, "
                     f"{int((delta < 0).sum())} down")
        ax.set_ylabel(f"delta {metric}")
    axes[-1, 0].set_xlabel("queries, sorted by delta")
    fig.tight_layout()
    return _save(fig, output, "deltas")


def plot_recall(qrels, runs, output, ks=RECALL_KS):
    """Recall@k of every run for k up to the deepest run."""
    plt = _plt()
    depth = max(int(df.groupby("qid").size().max()) for df in runs.values())
    ks = [k for k in ks if k <= depth] or [depth]
    fig, ax = plt.subplots(figsize=(WIDTH, 4.5))
    for name, run in runs.items():
        scores = evaluate_run(qrels, run, [f"recall@{k}" for k in ks])
        ax.plot(ks, [scores[f"recall@{k}"] for k in ks], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.grid(alpha=0.3)
    ax.legend()
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
    cols = min(len(teachers), 2)
    rows = -(-len(teachers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(teachers):]:
        ax.set_visible(False)
    for ax, t in zip(axes.flat, teachers):
        s = _teacher_scores(cache, t, qids)["score"].to_numpy()
        ax.hist(s, bins=50, color="tab:blue")
        ax.set_title(f"{t[:40]}\nn={len(s)} mean={s.mean():.3g} sd={s.std():.3g}")
        ax.set_ylabel("pairs")
        ax.set_xlabel("teacher score")
    fig.tight_layout()
    return _save(fig, output, "teacher_scores")


def plot_scatter(cache, teachers, runs, qids, output, seed: int = 0):
    """Teacher score against each run's score of the same (query, document) pairs, with Spearman's rho."""
    plt = _plt()
    cols = min(len(runs), 3)
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(len(teachers) * rows, cols, figsize=(WIDTH, WIDTH / cols * 0.85 * len(teachers) * rows),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for i, t in enumerate(teachers):
        teacher = _teacher_scores(cache, t, qids)
        for j, (name, run) in enumerate(runs.items()):
            ax = axes[i * rows + j // cols, j % cols]
            ax.set_visible(True)
            pairs = teacher.merge(run[["qid", "docid", "score"]], on=["qid", "docid"], suffixes=("_teacher", "_run"))
            if len(pairs) > MAX_POINTS:
                pairs = pairs.sample(MAX_POINTS, random_state=seed)
            if len(pairs) > 1:
                ax.scatter(pairs["score_run"], pairs["score_teacher"], s=3, alpha=0.3)
                rho = pairs["score_run"].rank().corr(pairs["score_teacher"].rank())
                ax.set_title(f"{name} (n={len(pairs)}, rho={rho:.2f})")
            else:
                ax.set_title(f"{name}: no shared pairs")
            ax.set_xlabel("run score")
            ax.set_ylabel(f"{t[:24]}")
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
    fig, axes = plt.subplots(1, panels, figsize=(WIDTH, 4.5), squeeze=False)
    for name, hist in histories.items():
        rows = [h for h in hist if "loss" in h and "step" in h]
        axes[0, 0].plot([h["step"] for h in rows], [h["loss"] for h in rows], label=name)
        if panels == 2 and dev[name]:
            axes[0, 1].plot(*zip(*dev[name]), marker="o", label=name)
    axes[0, 0].set_xlabel("step")
    axes[0, 0].set_ylabel("training loss")
    axes[0, 0].legend()
    if panels == 2:
        axes[0, 1].set_xlabel("step")
        axes[0, 1].set_ylabel("dev nDCG")
        axes[0, 1].legend()
    fig.tight_layout()
    return _save(fig, output, "loss")


STYLE = ("body{font-family:system-ui,sans-serif;font-size:17px;line-height:1.5;margin:0;color:#222}"
         "main{max-width:1100px;margin:0 auto;padding:1.5em}"
         "table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:0.5em 0}"
         "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}td:first-child,th:first-child{text-align:left}"
         "img{display:block;width:100%;height:auto;margin:0.5em 0}section{margin-top:2em}"
         ".explain{color:#444;max-width:75ch}.note{font-style:italic}nav{margin-bottom:1em}")


def _img(figure) -> str:
    if figure is None:
        return ""
    name, data = figure
    return f"<img alt=\"{name}\" src=\"data:image/png;base64,{data}\">"


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
        sections = [("metrics", "Metrics",
                     f"{len(runs)} runs over {len(qrels)} judged queries. <b>p</b>: paired {stat_test} t-test of each "
                     f"run against the baseline <b>{html.escape(baseline)}</b> over the same queries; * marks p &lt; "
                     f"{max_p}. <b>W/T/L</b>: the queries on which the run wins over, ties with, or loses to the "
                     "baseline on that metric.", _table_html(rows, metrics, baseline, max_p))]
        if len(runs) > 1:
            deltas = per_query_deltas(qrels, runs, baseline, metrics[0])
            figure = plot_deltas(deltas, baseline, metrics[0], output)
            tied = [n for n, d in deltas.items() if not np.any(d != 0)]
            note = (f"<p class=\"note\">{html.escape(', '.join(tied))} {'ties' if len(tied) == 1 else 'tie'} the "
                    f"baseline on every query: nothing to plot.</p>") if tied else ""
            sections.append(("deltas", f"Per-query {metrics[0]} against {baseline}",
                             f"Each bar is one judged query: the run's {metrics[0]} minus the baseline's, sorted from "
                             "the largest gain (green) to the largest loss (red); grey bars are ties. A run that beats "
                             "the baseline on average can still lose many queries.", note + _img(figure)))
        sections.append(("recall", "Recall@k",
                         "The share of each query's relevant documents found in the run's top k, averaged over "
                         "queries: how deep a reranker (or a distillation's candidates) must look.",
                         _img(plot_recall(qrels, runs, output))))
        if teachers:
            cache = cache if isinstance(cache, ScoreCache) else ScoreCache(cache)
            sections.append(("teacher", "Teacher scores",
                             "First, the histogram of each teacher's cached scores of these queries' candidates (their "
                             "scale decides temperatures and normalisation); then teacher score against each run's "
                             "score of the same (query, document) pairs, with Spearman's rank correlation rho (1: the "
                             "run orders pairs as the teacher does).",
                             _img(plot_teachers(cache, list(teachers), list(qrels), output))
                             + _img(plot_scatter(cache, list(teachers), runs, list(qrels), output))))
        if training:
            sections.append(("training", "Training",
                             "The training loss logged by each training folder (loss.jsonl) against the step, and the "
                             "dev nDCG where evaluation ran during training.",
                             _img(plot_losses(list(training), output))))
        contents = " &middot; ".join(f"<a href=\"#{key}\">{html.escape(head)}</a>" for key, head, _, _ in sections)
        body = "\n".join(f"<section id=\"{key}\"><h2>{html.escape(head)}</h2><p class=\"explain\">{text}</p>{content}"
                         "</section>" for key, head, text, content in sections)
        page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body><main>"
                f"<h1>{html.escape(title)}</h1><nav>{contents}</nav>\n{body}</main></body></html>\n")
        path = os.path.join(output, "index.html")
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        return path
