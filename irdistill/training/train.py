"""A training run: student + examples from the cache + loss, on the sentence-transformers trainers.

Mixed precision, gradient accumulation and DDP under torchrun come from the Hugging Face trainer. A run writes its
checkpoints to ``output/checkpoint-*`` and resumes from the newest one when started again; the finished model goes to
``output/final`` (it loads in sentence-transformers unchanged), the loss curve to ``output/loss.jsonl`` and
``output/loss.png``.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass, field

from ..cache.scores import ScoreCache
from ..data.dataset import load_dataset
from ..data.io import atomic_path
from ..errors import InputError
from ..models import resolve_model
from ..teachers.score import in_shard, parse_shard
from .examples import ExampleConfig, as_hf_dataset, build_examples
from .losses import make_loss
from .objectives import BiEncoderObjective, CrossEncoderObjective, MultiVectorObjective, sparse_objective

STUDENTS = ("bi-encoder", "cross-encoder", "colbert", "splade")
FLOPS = {"query": 5e-5, "document": 3e-5}  # sentence-transformers' SPLADE defaults


@dataclass
class TrainConfig:
    output: str
    dataset: str
    cache: str
    examples: ExampleConfig
    student: str = "bi-encoder"
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    split: str = "train"
    loss: object = "margin-mse"
    max_seq_length: int | None = 128
    epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 16
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    seed: int = 42
    precision: str = "auto"          # auto: bf16 on a GPU that has it, else fp32; or fp32 / fp16 / bf16
    dev_fraction: float = 0.0        # hold out this share of the training queries (seeded) to evaluate on while training
    fold: str | None = None          # "i/k": leave out fold i of k of the queries (the crc32 split of --shard)
    eval_steps: int | None = None    # default: save_steps
    save_steps: int = 100
    save_total_limit: int = 2
    logging_steps: int = 10
    trust_remote_code: bool = False
    flops: dict | None = None        # splade: FLOPS regulariser weights {query: .., document: ..} (default FLOPS)
    extra: dict = field(default_factory=dict)  # more TrainingArguments

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if "examples" not in d or "teacher" not in (d["examples"] or {}):
            raise InputError("the config needs examples: {teacher: <teacher id from `irdistill cache list`>, ...}")
        d["examples"] = ExampleConfig(**d["examples"])
        if d.get("student", "bi-encoder") not in STUDENTS:
            raise InputError(f"unknown student {d['student']!r} (choose from {', '.join(STUDENTS)})")
        return cls(**d)

    @classmethod
    def from_file(cls, path) -> "TrainConfig":
        import yaml

        if not os.path.exists(path):
            raise InputError("no such file", path)
        with open(path) as f:
            try:
                return cls.from_dict(yaml.safe_load(f) or {})
            except yaml.YAMLError as e:
                mark = getattr(e, "problem_mark", None)
                raise InputError(f"malformed YAML ({getattr(e, 'problem', e)})", path, mark.line + 1 if mark else None) from None
            except (TypeError, InputError) as e:
                raise InputError(str(e), path) from None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _precision(name: str) -> dict:
    import torch

    if name == "auto":
        name = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    out = {"bf16": name == "bf16", "fp16": name == "fp16"}
    if name == "bf16" and not torch.cuda.is_available():
        out["use_cpu"] = True  # bf16 autocast on the CPU (fast where the CPU has avx512_bf16 / AMX)
    return out


def load_student(cfg: TrainConfig):
    path = resolve_model(cfg.model)
    if cfg.student == "colbert":
        from ..models import load_colbert

        return load_colbert(path)
    if cfg.student == "splade":
        from ..models import load_splade

        return load_splade(path)
    if cfg.student == "bi-encoder":
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(path, trust_remote_code=cfg.trust_remote_code)
    from sentence_transformers import CrossEncoder

    return CrossEncoder(path, num_labels=1, trust_remote_code=cfg.trust_remote_code)


def student_objective(cfg: TrainConfig, model, loss, train_ds) -> tuple:
    """``(objective, trainer class, training-arguments class, extra training arguments)`` for the student."""
    import sentence_transformers as st

    if cfg.student == "bi-encoder":
        return BiEncoderObjective(model, loss), st.SentenceTransformerTrainer, st.SentenceTransformerTrainingArguments, {}
    if cfg.student == "cross-encoder":
        return CrossEncoderObjective(model, loss), st.CrossEncoderTrainer, st.CrossEncoderTrainingArguments, {}
    if cfg.student == "colbert":
        # the trainer applies prompts by column: the query marker to the query, the document marker to the rest;
        # documents are cut at max_seq_length while training only (the saved model keeps its document_length)
        columns = [c for c in train_ds[0] if c != "scores"]
        prompts = {c: model.prompts.get("query" if i == 0 else "document") or "" for i, c in enumerate(columns)}
        extra = {"prompts": prompts, "max_length": {"document": cfg.max_seq_length} if cfg.max_seq_length else None}
        return (MultiVectorObjective(model, loss), st.MultiVectorEncoderTrainer, st.MultiVectorEncoderTrainingArguments,
                extra)
    flops = {**FLOPS, **(cfg.flops or {})}
    return (sparse_objective(model, loss, flops["query"], flops["document"]), st.SparseEncoderTrainer,
            st.SparseEncoderTrainingArguments, {})


def last_checkpoint(output: str) -> str | None:
    ckpts = glob.glob(os.path.join(output, "checkpoint-*"))
    return max(ckpts, key=lambda p: int(p.rsplit("-", 1)[1])) if ckpts else None


def train(cfg: TrainConfig, callbacks=(), progress: bool = True) -> str:
    """Train (or resume) and return the folder of the final model."""
    import sentence_transformers as st

    final = os.path.join(cfg.output, "final")
    if os.path.exists(os.path.join(final, "config.json")):
        return final
    data = load_dataset(cfg.dataset, cfg.split)
    cache = ScoreCache(cfg.cache)
    examples = build_examples(data, cache, cfg.examples)
    dev = held_out_queries(data, cfg.dev_fraction, cfg.seed)
    fold = parse_shard(cfg.fold) if cfg.fold else None
    examples = [e for e in examples if e["query_id"] not in dev and not (fold and in_shard(e["query_id"], fold))]
    if not examples:
        raise InputError(f"no training examples left in {cfg.dataset} ({cfg.split}) after the held-out queries")
    train_ds = as_hf_dataset(examples, data, cfg.examples.text_view)
    model = load_student(cfg)
    base_length = model.max_seq_length
    if cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    evaluator = dev_evaluator(cfg, data, cache, dev) if dev else None
    loss = make_loss(cfg.loss)
    objective, trainer_cls, args_cls, student_args = student_objective(cfg, model, loss, train_ds)
    args = args_cls(
        output_dir=cfg.output, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size, learning_rate=cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio, gradient_accumulation_steps=cfg.grad_accum, seed=cfg.seed,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps, report_to=[], disable_tqdm=not progress, dataloader_drop_last=True,
        dataloader_pin_memory=_has_cuda(),
        eval_strategy="steps" if evaluator else "no", eval_steps=cfg.eval_steps or cfg.save_steps,
        **_precision(cfg.precision), **student_args, **cfg.extra)
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, loss=objective, evaluator=evaluator,
                          callbacks=list(callbacks))
    trainer.train(resume_from_checkpoint=last_checkpoint(cfg.output))
    write_loss_curve(trainer.state.log_history, cfg.output)
    model.max_seq_length = base_length  # saved with the base model's length: training may read shorter passages
    model.save(final + ".tmp")
    with atomic_path(os.path.join(final + ".tmp", "irdistill.json")) as tmp, open(tmp, "w") as f:
        json.dump({**asdict(cfg), "examples": asdict(cfg.examples), "training_examples": len(examples)}, f, indent=1, default=str)
    os.replace(final + ".tmp", final)
    return final


def held_out_queries(data, fraction: float, seed: int) -> set[str]:
    """A seeded share of the judged training queries, kept out of training to evaluate on."""
    import numpy as np

    qids = sorted(data.qrels)
    n = int(round(len(qids) * fraction))
    return set(np.random.default_rng(seed).choice(qids, n, replace=False).tolist()) if n else set()


def dev_evaluator(cfg: TrainConfig, data, cache: ScoreCache, dev: set[str]):
    """nDCG@10 on the held-out queries, over their cached candidates and judged documents (cheap: no full corpus)."""
    scored = cache.read(cfg.examples.teacher, qids=sorted(dev))
    corpus = data.view(cfg.examples.text_view)
    docs = sorted(set(scored["docid"]) | {d for q in dev for d in data.qrels[q]})
    texts = dict(zip(docs, corpus.texts(docs)))
    relevant = {q: {d for d, g in data.qrels[q].items() if g > 0} for q in dev}
    if cfg.student in ("bi-encoder", "colbert", "splade"):
        if cfg.student == "colbert":
            from sentence_transformers.multi_vector_encoder.evaluation import (
                MultiVectorInformationRetrievalEvaluator as InformationRetrievalEvaluator)
        elif cfg.student == "splade":
            from sentence_transformers.sparse_encoder.evaluation import (
                SparseInformationRetrievalEvaluator as InformationRetrievalEvaluator)
        else:
            from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        return InformationRetrievalEvaluator({q: data.queries[q] for q in dev}, texts, relevant, name="dev",
                                             write_csv=False)
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    by_q = scored.groupby("qid")["docid"].apply(list).to_dict()
    samples = [{"query": data.queries[q], "positive": [texts[d] for d in relevant[q]],
                "documents": [texts[d] for d in by_q.get(q, [])]} for q in sorted(dev)]
    return CrossEncoderRerankingEvaluator(samples, name="dev", write_csv=False)


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
