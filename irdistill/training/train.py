"""A training run: student + examples from the cache + loss, on the sentence-transformers trainers.

Mixed precision, gradient accumulation and DDP under torchrun come from the Hugging Face trainer. A run writes its
checkpoints to ``output/checkpoint-*`` and resumes from the newest one when started again; the finished model goes to
``output/final`` (it loads in sentence-transformers unchanged, its model card names the teacher, loss, data and
schedule: ``card.py``), the loss curve to ``output/loss.jsonl`` and ``output/loss.png``, and with ``report_to`` the
logs to TensorBoard (``output/tensorboard``), Weights & Biases or MLflow. What differs between student architectures
lives in ``students/``.

A folder holds one run: ``output/training.json`` records what produced it (the config, less where it goes and how
often it logs or saves, and the content of its inputs: the split's fingerprints, the starting model's). A run resumes
from the folder's checkpoints, or returns its ``final``, only when that record matches; a folder holding another run
is an InputError naming what differs, never a stale model. Without a record (written by an older irdistill) a
``final`` is reused when its ``final/irdistill.json`` holds the same config (its inputs cannot be checked), and bare
checkpoints are refused, since nothing says what made them.

Two options guard what the student knew before training: ``lora`` trains a low-rank adapter only, merged into the
weights on save (``lora.py``); ``merge_alpha: a`` saves ``(1 - a) * start + a * trained`` (WiSE-FT,
``models/merge.py``), except for parameters the start checkpoint did not have (a fresh head), which stay as trained.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
from dataclasses import asdict

from ..cache.scores import ScoreCache
from ..data.dataset import Dataset, load_dataset
from ..data.io import atomic_path
from ..data.shards import in_shard, parse_shard
from ..errors import InputError
from ..models import fingerprint, locate
from ..models.merge import fresh_parameters, interpolate_model
from ..progress import library_bars, shown, step
from ..teachers.spec import parse_spec
from . import card
from .config import TrainConfig, trackers
from .embedding_distill import EmbeddingConfig, embedding_part, recorded
from .examples import ExampleConfig, as_hf_dataset, build_examples, epoch_callback
from .lora import ADAPTER_FILE, add_lora, checkpoint_callback, load_checkpoint, merge_lora
from .losses import make_loss
from .scale import check_scale
from .students import get_student


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_arguments(precision: str) -> dict:
    """Mixed precision (``precision.choose``: bf16 only where native, with a note when asked for and not native), and
    the CPU settings: several CPU processes (torchrun without GPUs) train together over gloo."""
    import torch

    from ..precision import resolve

    world = parse_shard(None)[1]  # torchrun's RANK and WORLD_SIZE, checked on every device
    cuda = torch.cuda.is_available()
    precision = resolve(precision, cuda)
    out = {"bf16": precision == "bf16", "fp16": precision == "fp16"}
    if not cuda:
        out["use_cpu"] = True
        if world > 1:
            out["ddp_backend"] = "gloo"
    return out


def used_precision(args) -> str:
    """The precision the trainer ran in (recorded with the model: ``auto`` and ``bf16`` depend on the hardware)."""
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def last_checkpoint(output: str, needs: str | None = None) -> str | None:
    """The newest ``checkpoint-*`` folder (with the file ``needs`` in it, when given)."""
    ckpts = [c for c in glob.glob(os.path.join(output, "checkpoint-*"))
             if needs is None or os.path.exists(os.path.join(c, needs))]
    return max(ckpts, key=lambda p: int(p.rsplit("-", 1)[1])) if ckpts else None


RECORD = "training.json"
# where a run goes (its data and cache by content instead) and how often it logs, reports or saves: not what it learns
UNRECORDED = ("output", "dataset", "split", "cache", "report_to", "run_name", "logging_steps", "save_steps",
              "save_total_limit", "eval_steps")


def _json(value):
    return json.loads(json.dumps(value, default=str))


def _config_record(config: dict) -> dict:
    """A config (``asdict`` of a TrainConfig, as JSON) less the UNRECORDED options, with the defaults of options it
    lacks (a record written before they existed)."""
    default = _json(asdict(TrainConfig("", "", "", ExampleConfig(""))))
    out = {**default, **config, "examples": {**default["examples"], **config.get("examples", {})}}
    return {k: out[k] for k in default if k not in UNRECORDED}


def run_record(cfg: TrainConfig, data: Dataset) -> dict:
    """What produces a run in ``cfg.output``: the config (the paths of its data and cache aside) and its inputs by
    content: the split (``Dataset.fingerprint``, and the text view the student reads), the starting model's weights
    (``models.fingerprint``; None while a hub model is not downloaded, when only its name is compared). The teacher's
    scores are keyed by ``examples.teacher``, a cache key that holds the teacher's and the corpus's fingerprints."""
    inputs = {**data.fingerprint(), "weights": fingerprint(cfg.model)}
    if cfg.examples.text_view:
        inputs["view"] = data.view(cfg.examples.text_view).fingerprint()
    if cfg.examples.query_view:
        texts = json.dumps(data.query_texts(cfg.examples.query_view), sort_keys=True)
        inputs["query_view"] = hashlib.sha1(texts.encode()).hexdigest()[:16]
    config = _json(asdict(cfg))
    if config.get("embeddings"):  # the embedding teacher by what it computes, not where it is reached
        config["embeddings"] = {**config["embeddings"], "teacher": recorded(parse_spec(config["embeddings"]["teacher"]))}
    return {"config": _config_record(config), "inputs": inputs}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {prefix + k: v})
    return out


def _read_record(path: str) -> dict | None:
    try:
        with open(path) as f:
            held = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        held = None
    if not isinstance(held, dict):
        raise InputError("unreadable record of a training run; remove the folder or use another --output", path)
    return held


def write_record(output: str, record: dict, model: str) -> None:
    """``record`` into ``output/training.json``, the starting model's fingerprint taken again (a hub model is
    downloaded by now)."""
    os.makedirs(output, exist_ok=True)
    with atomic_path(os.path.join(output, RECORD)) as tmp, open(tmp, "w") as f:
        json.dump({**record, "inputs": {**record["inputs"], "weights": fingerprint(model)}}, f, indent=1)


def held_run(output: str, record: dict) -> bool:
    """Whether ``output`` holds checkpoints or a final model of the run ``record`` describes (False: nothing to
    reuse); InputError if they are another run's, or nothing says whose."""
    if not (os.path.exists(os.path.join(output, "final", "config.json")) or last_checkpoint(output)):
        return False
    held = _read_record(os.path.join(output, RECORD))
    if held is None:
        old = _read_record(os.path.join(output, "final", "irdistill.json"))  # an older irdistill's final: its config
        if old is None:
            raise InputError("holds checkpoints or a model but no record of the run that made them (an older "
                             "irdistill); use another --output or remove it", output)
        held = {"config": _config_record(old)}
    now, then = _flat(_json(record)), _flat(held)
    if now.get("inputs.weights") is None:  # a hub model not downloaded: its weights are unknown here
        then.pop("inputs.weights", None)
    sections = {k.split(".", 1)[0] for k in then}  # an older final's record has no inputs
    show = lambda v: "none" if v is None else v if isinstance(v, (str, int, float)) else json.dumps(v)
    diff = [f"{k.split('.', 1)[1]} {show(then.get(k))} -> {show(now.get(k))}" for k in then.keys() | now.keys()
            if then.get(k) != now.get(k) and k.split(".", 1)[0] in sections]
    if diff:
        raise InputError(f"holds a run of another config ({', '.join(sorted(diff))}); use another --output or remove "
                         "it", output)
    return True


def held_out_queries(data: Dataset, fraction: float, seed: int) -> set[str]:
    """A seeded share of the judged training queries, kept out of training to evaluate on."""
    import numpy as np

    qids = sorted(data.qrels)
    n = int(round(len(qids) * fraction))
    return set(np.random.default_rng(seed).choice(qids, n, replace=False).tolist()) if n else set()


def training_examples(cfg: TrainConfig, data: Dataset, cache: ScoreCache, dev: set[str]) -> list[dict]:
    """The examples of the training queries: neither held out (``dev``) nor in the left-out fold."""
    fold = parse_shard(cfg.fold) if cfg.fold else None
    examples = [e for e in build_examples(data, cache, cfg.examples)
                if e["query_id"] not in dev and not (fold and in_shard(e["query_id"], fold))]
    if not examples:
        raise InputError(f"no training examples left in {cfg.dataset} ({cfg.split}) after the held-out queries")
    return examples


def dev_inputs(cfg: TrainConfig, data: Dataset, cache: ScoreCache, dev: set[str]) -> tuple:
    """``(queries, texts, relevant, candidates)`` of the held-out queries, for a student's dev evaluator: their
    cached candidates and judged documents (cheap: no full corpus)."""
    scored = cache.read(cfg.examples.teacher, qids=sorted(dev))
    docs = sorted(set(scored["docid"]) | {d for q in dev for d in data.qrels[q]})
    texts = dict(zip(docs, data.view(cfg.examples.text_view).texts(docs)))
    relevant = {q: {d for d, g in data.qrels[q].items() if g > 0} for q in dev}
    candidates = scored.groupby("qid")["docid"].apply(list).to_dict()
    queries = data.query_texts(cfg.examples.query_view)
    return {q: queries[q] for q in sorted(dev)}, texts, relevant, candidates


def tracking(cfg: TrainConfig) -> tuple[dict, list]:
    """The trainer's ``report_to`` and ``run_name`` (default: the output folder's name), and the callbacks they
    need: TensorBoard logs go to ``<output>/tensorboard`` (one folder, that a resumed run continues)."""
    names = trackers(cfg.report_to)
    extra = []
    if "tensorboard" in names:
        from transformers.integrations import TensorBoardCallback

        board = TensorBoardCallback()
        board.logging_dir = os.path.join(cfg.output, "tensorboard")
        extra.append(board)
    run_name = cfg.run_name or os.path.basename(os.path.normpath(cfg.output))
    return {"report_to": [n for n in names if n != "tensorboard"], "run_name": run_name}, extra


def train(cfg: TrainConfig, callbacks=(), progress: bool = True) -> str:
    """Train (or resume) and return the folder of the final model."""
    with library_bars(shown(progress)):  # loading, widget examples, saving: as the trainer's own bar
        return _train(cfg, callbacks, progress)


def _train(cfg: TrainConfig, callbacks, progress: bool) -> str:
    final = os.path.join(cfg.output, "final")
    data = load_dataset(cfg.dataset, cfg.split)
    record = run_record(cfg, data)
    if held_run(cfg.output, record) and os.path.exists(os.path.join(final, "config.json")):
        return final
    student, loss, path = get_student(cfg.student), make_loss(cfg.loss), locate(cfg.model)
    cache = ScoreCache(cfg.cache)
    dev = held_out_queries(data, cfg.dev_fraction, cfg.seed)
    step(f"building training examples from teacher {cfg.examples.teacher or '(labels)'}", progress)
    examples = training_examples(cfg, data, cache, dev)
    sampled = cfg.examples.strategy == "sample"
    train_ds = as_hf_dataset(examples, data, cfg.examples.text_view, cfg.examples.remove_query, cfg.seed,
                             cfg.examples.negatives if sampled else None, cfg.examples.query_view)
    if sampled:  # negatives drawn anew each epoch
        callbacks = [*callbacks, epoch_callback(train_ds.epoch_token)]
    teacher, name = cache.describe(cfg.examples.teacher), card.dataset_label(data)
    report, tracker_callbacks = tracking(cfg)
    step(f"loading {cfg.model} as a {cfg.student} student", progress)
    model = student.load(path, cfg)
    card.prepare(model, cfg, teacher, name)
    start = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.merge_alpha is not None else None
    fresh = fresh_parameters(model) if start is not None else set()  # a new head: kept as trained, not merged back
    if cfg.lora:
        add_lora(model, cfg.lora)
        callbacks = [*callbacks, checkpoint_callback(model)]
    base_length = model.max_seq_length
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    evaluator = student.dev_evaluator(*dev_inputs(cfg, data, cache, dev)) if dev else None
    columns = [c for c in train_ds[0] if c != "scores"]
    chosen = dict(
        output_dir=cfg.output, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio, gradient_accumulation_steps=cfg.grad_accum, seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps, **report, disable_tqdm=not shown(progress), dataloader_drop_last=True,
        dataloader_pin_memory=_has_cuda(),
        eval_strategy="steps" if evaluator else "no", eval_steps=cfg.eval_steps or cfg.save_steps,
        **_device_arguments(cfg.precision), **student.training_arguments(model, cfg, columns))
    clash = sorted(set(cfg.extra) & set(chosen))
    if clash:
        raise InputError(f"option extra: {clash[0]} is set from the config already (its own option, or irdistill's "
                         "choice); leave it out of extra")
    args = student.arguments(**chosen, **cfg.extra)
    for note in [] if sampled else check_scale(loss, cache.read(cfg.examples.teacher, qids=sorted({e["query_id"] for e in examples})[:500]),
                            teacher, getattr(model, "similarity_fn_name", None) == "cosine"):
        print(f"irdistill: note: {note}", file=sys.stderr)
    datasets, objective = train_ds, student.objective(model, loss, cfg)
    if cfg.embeddings:  # beside the score loss: the trainer alternates batches of the two (proportionally)
        emb_ds, emb_loss = embedding_part(model, data, EmbeddingConfig.from_dict(cfg.embeddings))
        datasets, objective = {"scores": train_ds, "embeddings": emb_ds}, {"scores": objective, "embeddings": emb_loss}
    trainer = student.trainer(model=model, args=args, train_dataset=datasets, loss=objective, evaluator=evaluator,
                              callbacks=[*tracker_callbacks, *callbacks])
    if cfg.lora:  # the trainer cannot read its model files back into a model with adapters
        trainer._load_from_checkpoint = lambda folder: load_checkpoint(model, folder)
    if trainer.is_world_process_zero():  # before the first checkpoint
        write_record(cfg.output, record, cfg.model)
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg.output, ADAPTER_FILE if cfg.lora else None))
    if trainer.is_world_process_zero():
        step(f"saving {final}", progress)
        write_loss_curve(trainer.state.log_history, cfg.output)
        if cfg.lora:
            merge_lora(model)
        if start is not None:
            interpolate_model(model, start, cfg.merge_alpha, fresh)
        # a retriever keeps the base model's length (training may read shorter passages); a re-ranker keeps the one it
        # trained at, since at others its scores drift (Cranfield: 0.146 at 512 tokens, 0.332 at its 128)
        if student.retriever:
            model.max_seq_length = base_length
        model.save(final + ".tmp")
        with atomic_path(os.path.join(final + ".tmp", "irdistill.json")) as tmp, open(tmp, "w") as f:
            json.dump({**asdict(cfg), "training_examples": len(train_ds), "precision_used": used_precision(args)}, f,
                      indent=1, default=str)
        card.write_distillation(final + ".tmp", cfg, teacher, name, len(examples),
                                len({e["query_id"] for e in examples}), len(dev), trainer.state.global_step,
                                trainer.state.epoch or 0.0, trainer.state.log_history)
        os.replace(final + ".tmp", final)
    trainer.accelerator.wait_for_everyone()  # under DDP the other processes return once rank 0 has saved
    return final


def write_loss_curve(history: list[dict], output: str) -> None:
    """``loss.jsonl`` (every logged step and evaluation, one per line) and ``loss.png`` (the training loss)."""
    rows = [h for h in history if "loss" in h]
    with atomic_path(os.path.join(output, "loss.jsonl")) as tmp, open(tmp, "w") as f:
        for h in history:
            f.write(json.dumps(h) + "\n")
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in rows], [h["loss"] for h in rows])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(os.path.basename(os.path.normpath(output)))
    fig.tight_layout()
    with atomic_path(os.path.join(output, "loss.png")) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
