"""The model card of a trained student: the README.md that sentence-transformers writes when it saves a model (the
Hugging Face hub's format: YAML metadata, then Markdown), with what irdistill knows added to it.

Before training, ``prepare`` fills the model's ``model_card_data`` (name, training data, tags), so the card that
sentence-transformers renders names them. After saving, ``write_distillation`` adds a "Distillation" section: the
teacher (its cache key and description), the loss and its settings, how examples were drawn, the data, the
schedule, and the dev nDCG@10 when queries were held out. ``add_results`` adds the results of ``irdistill
evaluate`` afterwards: to the card's ``model-index`` (which the hub shows as evaluation results) and to an
"Evaluation (irdistill)" table. The model files are left alone (a card is not part of a model's fingerprint).
"""

from __future__ import annotations

import glob
import json
import math
import os
import re

from ..data.io import atomic_path
from ..errors import InputError, brief

CARD = "README.md"
TASK = "retrieval"  # the model-index task of irdistill's results (sentence-transformers' own dev results use another)
TAGS = ["irdistill", "knowledge-distillation"]


def _public(name: str) -> str:
    """A model or dataset name fit for a public card: a local path becomes its last folder name (hub names and
    ir_datasets ids stay).

    >>> _public("../shared/datasets/scifact"), _public("beir/scifact")
    ('scifact', 'beir/scifact')
    """
    local = os.path.exists(name) or name.startswith((".", "/", "~"))
    return os.path.basename(os.path.normpath(name)) if local else name


def dataset_label(data) -> str:
    """A dataset as a card names it: its ir_datasets id, or its folder's name."""
    return _public(data.source) if data.source else data.name


def _teacher_label(key: str, teacher: dict) -> str:
    model = teacher.get("model")
    return f"{teacher.get('kind', 'teacher')} {_public(model)}" if isinstance(model, str) else teacher.get("kind", key)


def prepare(model, cfg, teacher: dict, dataset_name: str) -> None:
    """Name the model and its training data in ``model.model_card_data`` (a sentence-transformers model's card data;
    models without one are left as they are)."""
    data = getattr(model, "model_card_data", None)
    if data is None:
        return
    data.model_name = f"{cfg.student} distilled from {_teacher_label(cfg.examples.teacher, teacher)} on {dataset_name}"
    data.train_datasets = [{"name": f"{dataset_name} ({cfg.split})"}]
    data.add_tags(TAGS + [f"teacher:{teacher.get('kind', 'unknown')}"])


def dev_ndcg(history: list[dict]) -> tuple[float, int] | None:
    """The last dev nDCG@10 the trainer logged, and its step (None when nothing was held out).

    >>> dev_ndcg([{"loss": 1.0, "step": 2}, {"eval_dev_cosine_ndcg@10": 0.5, "step": 3}])
    (0.5, 3)
    """
    for h in reversed(history):
        for key, value in h.items():
            if key.startswith("eval_") and key.endswith("ndcg@10"):
                return value, h.get("step")
    return None


def distillation_section(cfg, teacher: dict, dataset_name: str, examples: int, queries: int, held_out: int,
                         steps: int, epochs: float, history: list[dict]) -> str:
    """The card's "Distillation" section (Markdown)."""
    from .losses import make_loss

    specs = cfg.loss if isinstance(cfg.loss, list) else [cfg.loss]
    names = " + ".join(s if isinstance(s, str) else str(s.get("name")) for s in specs)
    from .examples import SAMPLING_REFERENCE

    loss = make_loss(cfg.loss)
    settings = json.dumps(loss.config(), default=str)
    references = loss.references() + ([SAMPLING_REFERENCE] if cfg.examples.strategy == "sample" else [])
    sampling = {k: v for k, v in vars(cfg.examples).items() if k != "teacher"}
    lines = [
        "## Distillation",
        "",
        "Trained with irdistill on the scores of a teacher cached beforehand (knowledge distillation): the student "
        "learns to rank each query's candidates as the teacher does.",
        "",
        f"- **Teacher:** {_teacher_label(cfg.examples.teacher, teacher)} (cache key `{cfg.examples.teacher}`)",
        f"- **Student:** {cfg.student}, initialised from `{_public(cfg.model)}`",
        f"- **Loss:** {names}, settings `{settings}`",
        f"- **Examples:** `{json.dumps(sampling, default=str)}`",
        f"- **Data:** {dataset_name}, split `{cfg.split}`: {examples} training examples from {queries} queries"
        + (f" ({held_out} more held out for evaluation)" if held_out else "")
        + (f", fold `{cfg.fold}` left out" if cfg.fold else ""),
        f"- **Schedule:** {steps} steps ({epochs:.3g} epochs), batch size {cfg.batch_size}"
        + (f" x {cfg.grad_accum} accumulated" if cfg.grad_accum > 1 else "")
        + f", learning rate {cfg.learning_rate:g}, warmup ratio {cfg.warmup_ratio:g}, max sequence length "
        f"{cfg.max_seq_length}, precision {cfg.precision}, seed {cfg.seed}",
    ]
    if references:
        lines.append(f"- **References:** {'; '.join(references)}")
    dev = dev_ndcg(history)
    if dev:
        lines.append(f"- **Dev nDCG@10:** {dev[0]:.4f} on the {held_out} held-out queries (step {dev[1]})")
    lines += ["", "<details><summary>Teacher description (from the score cache)</summary>", "", "```json",
              json.dumps(teacher, indent=1, sort_keys=True, default=str), "```", "", "</details>"]
    return "\n".join(lines)


def _marked(name: str, body: str) -> str:
    return f"<!-- irdistill:{name} -->\n{body}\n<!-- /irdistill:{name} -->\n\n"


def put_section(text: str, name: str, body: str) -> str:
    """``text`` with the irdistill section ``name`` set to ``body``: replaced where it is, else inserted after the
    other irdistill sections, before sentence-transformers' "Model Details" (or at the end)."""
    block = _marked(name, body)
    found = re.search(rf"<!-- irdistill:{name} -->\n.*?<!-- /irdistill:{name} -->\n*", text, re.S)
    if found:
        return text[: found.start()] + block + text[found.end():]
    ends = [m.end() for m in re.finditer(r"<!-- /irdistill:\w+ -->\n*", text)]
    details = text.find("## Model Details")
    at = ends[-1] if ends else details if details >= 0 else len(text)
    return text[:at] + block + text[at:]


def write_distillation(folder: str, cfg, teacher: dict, dataset_name: str, examples: int, queries: int, held_out: int,
                       steps: int, epochs: float, history: list[dict]) -> None:
    """Add the "Distillation" section to the card in ``folder`` (written by sentence-transformers' save)."""
    path = os.path.join(folder, CARD)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    body = distillation_section(cfg, teacher, dataset_name, examples, queries, held_out, steps, epochs, history)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(put_section(text, "distillation", body))


def read_results(paths) -> list[dict]:
    """The ``metrics.json`` that ``irdistill evaluate`` wrote: each path is such a file, a folder holding one
    (``runs/<name>/``), or a folder of such folders (a suite's ``runs/suite-.../``)."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            files = [path]
        elif os.path.isfile(os.path.join(path, "metrics.json")):
            files = [os.path.join(path, "metrics.json")]
        else:
            files = sorted(glob.glob(os.path.join(glob.escape(path), "*", "metrics.json")))
        if not files:
            raise InputError("no metrics.json of `irdistill evaluate` here" if os.path.exists(path) else "no such file",
                             path)
        for f in files:
            try:
                with open(f, encoding="utf-8") as fh:
                    r = json.load(fh)
                ok = isinstance(r, dict) and isinstance(r.get("metrics"), dict) and isinstance(r.get("dataset"), str) \
                    and all(isinstance(v, (int, float)) for v in r["metrics"].values())
            except (OSError, ValueError, UnicodeDecodeError, RecursionError):
                ok = False
            if not ok:
                raise InputError("not a metrics.json of `irdistill evaluate` (run, dataset, split, metrics)", f)
            _check_result(r, f)
            found.append({**r, "_path": f})
    return found


def _check_result(r: dict, path) -> None:
    """InputError naming ``path`` unless the result's names are one-line text (they become table cells and YAML) and
    its metrics finite numbers: what the card's model-index can hold."""
    for key in ("dataset", "split", "run"):
        value = r.get(key)
        if key != "dataset" and value is None:
            continue
        if not isinstance(value, str) or not value.strip() or value != " ".join(value.split()):
            raise InputError(f"{key} must be one line of text, not {brief(value)}", path)
    if not r["metrics"]:
        raise InputError("no metrics", path)
    for m, v in r["metrics"].items():
        if not m.strip() or m != " ".join(m.split()):
            raise InputError(f"metric name {brief(m)} is not one line of text", path)
        try:
            finite = not isinstance(v, bool) and math.isfinite(v)
        except OverflowError:  # an int beyond float's range
            finite = False
        if not finite:
            raise InputError(f"metric {m} must be a finite number, not {brief(v)}", path)


def _dataset_label(source: str) -> str:
    return _public(source).replace("/", " ")


def results_table(eval_results) -> str:
    """The "Evaluation (irdistill)" section: one row per dataset, split and run; one column per metric."""
    rows: dict[tuple, dict] = {}
    metrics: list[str] = []
    for r in eval_results:
        if r.task_type != TASK:
            continue
        rows.setdefault((r.dataset_name, r.dataset_split or "", r.dataset_config or ""), {})[r.metric_type] = r.metric_value
        metrics += [r.metric_type] if r.metric_type not in metrics else []
    lines = ["## Evaluation (irdistill)", "", "Retrieval results measured with `irdistill evaluate` (ranx metrics).", "",
             "| dataset | split | run | " + " | ".join(m.replace("|", "\\|") for m in metrics) + " |", "|:--|:--|:--|" + "--:|" * len(metrics)]
    for (dataset, split, run), values in rows.items():
        cells = [f"{values[m]:.4f}" if isinstance(values.get(m), (int, float)) else "" for m in metrics]
        cell = lambda text: str(text).replace("|", "\\|")  # a pipe would end the cell
        lines.append(f"| {cell(dataset)} | {cell(split)} | `{cell(run)}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _card_path(model_dir: str) -> str:
    path = os.path.join(model_dir, CARD)
    if not os.path.isfile(path):
        raise InputError("no model card (README.md) here: give the folder of a model saved by sentence-transformers"
                         if os.path.isdir(model_dir) else "no such model folder", model_dir)
    return path


def add_results(model_dir: str, paths) -> tuple[str, int]:
    """Add the results ``irdistill evaluate`` wrote under ``paths`` (see ``read_results``) to the card of the model
    in ``model_dir``; returns the card's path and the number of results."""
    from ..models import fingerprint

    card = _load_card(_card_path(model_dir))  # a damaged card is named before anything else
    results = read_results(paths)
    weights = fingerprint(model_dir)
    for r in results:
        check_model(r, model_dir, weights)
    return add_evaluations(model_dir, results, card), len(results)


def check_model(result: dict, model_dir: str, weights: str | None) -> None:
    """InputError unless ``result`` (a metrics.json, its path in ``_path``) was measured with ``weights``, those of
    the model in ``model_dir``: a card holds its own model's results, not a BM25 run's or another model's."""
    where = result.get("_path")
    if "weights" in result:
        if result["weights"] != weights:
            raise InputError(f"measured with {result.get('model')!r}, whose weights are not those in --model "
                             f"{model_dir}", where)
        return
    if "retriever" in result:
        raise InputError(f"measured with {result['retriever']}, no model: it does not belong in a model's card", where)
    raise InputError("records no model (evaluated from a run file, or by an older irdistill), so it cannot be shown "
                     "to be this model's; evaluate the model with `irdistill evaluate --model`", where)


def _load_card(path: str):
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(path)
    except UnicodeDecodeError:
        raise InputError("the model card is not UTF-8 text", path) from None
    except Exception as e:  # its YAML header is malformed (yaml.YAMLError, ValueError)
        raise InputError(f"the model card's metadata header cannot be read ({' '.join(str(e).split())[:200]})",
                         path) from None


def add_evaluations(model_dir: str, results: list[dict], card=None) -> str:
    """Add evaluation results (``metrics.json`` contents: run, dataset, split, metrics) to the card of the model in
    ``model_dir`` (``card``, when read already): to its ``model-index`` and its "Evaluation (irdistill)" table. A result
    of the same dataset, split and run replaces the earlier one. Returns the card's path."""
    from huggingface_hub import EvalResult

    path = _card_path(model_dir)
    card = card or _load_card(path)
    new = [EvalResult(task_type=TASK, task_name="Retrieval (irdistill evaluate)",
                      dataset_type=_public(r["dataset"]), dataset_name=_dataset_label(r["dataset"]),
                      dataset_split=r.get("split"), dataset_config=r.get("run"), metric_type=m, metric_name=m,
                      metric_value=float(v))
           for r in results for m, v in r["metrics"].items()]
    replaced = {n.unique_identifier for n in new}
    card.data.eval_results = [e for e in card.data.eval_results or [] if e.unique_identifier not in replaced] + new
    card.data.model_name = card.data.model_name or os.path.basename(os.path.normpath(model_dir))
    card.text = put_section(card.text, "evaluation", results_table(card.data.eval_results))
    with atomic_path(path) as tmp:
        card.save(tmp)
    return path
