"""Embedding distillation: the student's embeddings of a collection's texts regress a teacher's (EmbedDistill, Kim et
al., 2023; multilingual knowledge distillation, Reimers and Gurevych, 2020). No labels and no queries: the texts of
the target collection are the training data.

Each example is a text the student reads and the teacher's vector of a text the teacher reads: the same passage, or,
with ``teacher_view``, the passage's text in another view (the English original of a German passage, so the student
learns to put a German passage where the teacher puts its English source). ``sentences`` adds every sentence of each
text as an example of its own (more, shorter examples from the same collection). Teacher vectors come from any teacher
with ``embed(texts, role)`` (``embeddings-api``, ``bi-encoder``), kept by content, so a rerun embeds nothing again.
When the sizes differ, a learned projection maps the student's vectors to the teacher's (on the loss, not saved).

Regressing another model's space as it is moves only what training shows the student: the passages move into the
teacher's space and the queries, never seen, stay in the student's (XQuAD, MiniLM from e5: nDCG@10 0.72 -> 0.06).
``align`` first maps the teacher's vectors into the student's space, fitted on the texts both read (the student's
vectors before training against the teacher's): ``linear`` (ridge least squares with a bias) or ``orthogonal``
(Procrustes: a rotation, which keeps the teacher's geometry). Aligned targets have the student's size, so no
projection is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from torch import nn

from ..data.dataset import Dataset
from ..errors import InputError

METRICS = ("cosine", "mse", "l2")
ALIGNS = ("none", "linear", "orthogonal")
EMBEDDERS = ("embeddings-api", "bi-encoder")  # the teacher kinds with embed(texts, role)
# options of a teacher's spec that say how to reach it, not what it computes: left out of a training run's record
TRANSPORT = ("endpoint", "vectors", "api_key", "api_key_env", "timeout", "retries", "rate_limit", "allow_insecure",
             "batch_size", "device", "workers")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9\"'(])")


@dataclass
class EmbeddingConfig:
    teacher: dict                   # a teacher spec whose teacher has embed(texts, role)
    teacher_view: str | None = None  # the teacher reads this text view of each passage (default: the student's)
    student_view: str | None = None  # the student reads this one (default: the corpus)
    sentences: bool = False         # also each sentence of every text, as an example of its own
    both_views: bool = True         # with teacher_view: the teacher's view is also a student text (its own target)
    metric: str = "cosine"          # cosine, mse or l2 (sentence-transformers' EmbedDistillLoss)
    align: str = "none"             # none, linear or orthogonal: map the teacher's vectors into the student's space
    weight: float = 1.0             # beside score losses: this loss's share

    @classmethod
    def from_dict(cls, d) -> "EmbeddingConfig":
        """Every option checked (names, types, the teacher's spec) before anything loads."""
        from dataclasses import fields

        from ..errors import choice, keyword_types, number, typed
        from ..teachers.spec import parse_spec

        if not isinstance(d, dict) or "teacher" not in d:
            raise InputError("option embeddings: a mapping with a teacher (a spec whose teacher embeds: embeddings-api "
                             "or bi-encoder) and options")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError(f"unknown embeddings option(s): {', '.join(unknown)}")
        types = keyword_types(cls.__init__)
        for key, value in d.items():
            if key != "teacher":
                typed(value, types[key], f"option embeddings.{key}")
        choice(d.get("metric", "cosine"), "option embeddings.metric", METRICS)
        choice(d.get("align", "none"), "option embeddings.align", ALIGNS)
        number(d.get("weight", 1.0), "option embeddings.weight", float, above=0)
        spec = parse_spec(d["teacher"])
        if spec["kind"] not in EMBEDDERS:
            raise InputError(f"option embeddings.teacher: a {spec['kind']} teacher gives no embeddings (use "
                             f"{' or '.join(EMBEDDERS)})")
        return cls(**{**d, "teacher": spec})


def sentences(text: str, min_words: int = 4) -> list[str]:
    """The sentences of ``text`` of at least ``min_words`` words.

    >>> sentences("Kurz. Das ist ein ganzer Satz hier. And one more English sentence.")
    ['Das ist ein ganzer Satz hier.', 'And one more English sentence.']
    """
    return [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= min_words]


def pairs(data: Dataset, cfg: EmbeddingConfig) -> list[tuple[str, str]]:
    """``(student text, teacher text)`` examples from every document of ``data`` (see the module doc)."""
    ids = list(data.corpus.ids)
    student = data.view(cfg.student_view).texts(ids)
    teacher = data.view(cfg.teacher_view).texts(ids) if cfg.teacher_view else student
    out = list(zip(student, teacher))
    if cfg.teacher_view and cfg.both_views:
        out += list(zip(teacher, teacher))
    if cfg.sentences:
        texts = dict.fromkeys(student + (teacher if cfg.teacher_view else []))
        out += [(s, s) for t in texts for s in sentences(t)]
    return list(dict.fromkeys(out))


def teacher_vectors(teacher, texts: list[str]) -> np.ndarray:
    if not hasattr(teacher, "embed"):
        raise InputError(f"teacher {teacher.kind} gives no embeddings (use embeddings-api or bi-encoder)")
    return np.asarray(teacher.embed(texts, "passage"), dtype=np.float32)


def align(teacher: np.ndarray, student: np.ndarray, how: str, ridge: float = 1e-2) -> np.ndarray:
    """The teacher's vectors mapped into the student's space by a map fitted so that ``teacher @ map ~ student``
    (row ``i`` of both: one text as each model reads it).

    >>> rng = np.random.default_rng(0)
    >>> t = rng.normal(size=(50, 4)); q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    >>> bool(np.allclose(align(t, t @ q, "orthogonal"), t @ q, atol=1e-6))
    True
    >>> align(t, t[:, :3] * 2, "linear").shape
    (50, 3)
    """
    if how == "orthogonal":  # Procrustes; sizes may differ (the rotation then also drops or pads dimensions)
        u, _, vt = np.linalg.svd(teacher.T @ student, full_matrices=False)
        return (teacher @ (u @ vt)).astype(np.float32)
    if how == "linear":
        x = np.hstack([teacher, np.ones((len(teacher), 1), teacher.dtype)]).astype(np.float64)
        gram = x.T @ x
        gram[np.diag_indices_from(gram)] += ridge * np.trace(gram) / len(gram)
        return (x @ np.linalg.solve(gram, x.T @ student)).astype(np.float32)
    return teacher


def targets(model, examples: list[tuple[str, str]], vectors: np.ndarray, cfg: EmbeddingConfig) -> np.ndarray:
    """The teacher's vectors of ``examples``, aligned to ``model`` (a SentenceTransformer) as ``cfg.align`` says."""
    if cfg.align == "none":
        return vectors
    texts = [t for _, t in examples]
    unique = list(dict.fromkeys(texts))  # a text the teacher read, once
    row = {t: i for i, t in enumerate(texts)}  # (any one of its rows: equal texts have equal vectors)
    start = model.encode(unique, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
    fitted = align(vectors[[row[t] for t in unique]], np.asarray(start, dtype=np.float32), cfg.align)
    at = {t: i for i, t in enumerate(unique)}
    return fitted[[at[t] for t in texts]]


def hf_dataset(examples: list[tuple[str, str]], vectors: np.ndarray):
    """A Hugging Face dataset of the student's texts (``text``) and the teacher's vectors (``label``)."""
    from datasets import Dataset as HFDataset

    return HFDataset.from_dict({"text": [s for s, _ in examples], "label": vectors.tolist()})


def embedding_loss(model, cfg: EmbeddingConfig, teacher_dim: int):
    """sentence-transformers' EmbedDistillLoss (a projection when the sizes differ), times ``cfg.weight``."""
    from sentence_transformers.sentence_transformer.losses import EmbedDistillLoss

    dim = model.get_embedding_dimension()
    loss = EmbedDistillLoss(model, distance_metric=cfg.metric, projection_dim=None if dim == teacher_dim else teacher_dim)
    return loss if cfg.weight == 1.0 else Weighted(loss, cfg.weight)


def embedding_part(model, data: Dataset, cfg: EmbeddingConfig):
    """``(dataset, loss)`` of embedding distillation over ``data``'s texts, for the trainer beside the score loss."""
    from ..teachers import build_teacher

    examples = pairs(data, cfg)
    vectors = targets(model, examples, teacher_vectors(build_teacher(cfg.teacher, data), [t for _, t in examples]), cfg)
    return hf_dataset(examples, vectors), embedding_loss(model, cfg, vectors.shape[1])


def recorded(spec: dict) -> dict:
    """A teacher spec without the options that only say how to reach the teacher (``TRANSPORT``)."""
    return {k: v for k, v in spec.items() if k not in TRANSPORT}


class Weighted(nn.Module):
    """A sentence-transformers loss times a weight (its parameters, e.g. a projection, train as its own)."""

    def __init__(self, loss: nn.Module, weight: float):
        super().__init__()
        self.loss, self.weight = loss, weight

    def forward(self, features, labels):
        return self.weight * self.loss(features, labels)


def train_embeddings(model: str, data: Dataset, cfg: EmbeddingConfig, output: str, epochs: float = 1.0,
                     batch_size: int = 32, learning_rate: float = 2e-5, max_seq_length: int | None = 256, seed: int = 42,
                     precision: str = "auto", progress: bool = True) -> str:
    """Train ``model`` (a SentenceTransformer) on ``data``'s texts against the teacher's vectors alone; returns the
    folder of the final model (``<output>/final``, which loads in sentence-transformers unchanged). Like ``train``,
    the folder keeps a record of what made it (``training.json``): a finished run of the same settings and inputs is
    returned as it is, another run's folder is refused."""
    import os
    from dataclasses import asdict

    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from ..data.io import check_output
    from ..models import fingerprint, locate
    from ..progress import shown
    from ..teachers import build_teacher
    from .train import _device_arguments, held_run, write_record

    check_output(output, "folder")
    final = os.path.join(output, "final")
    settings = {"model": model, "embeddings": {**asdict(cfg), "teacher": recorded(cfg.teacher)}, "epochs": epochs,
                "batch_size": batch_size, "learning_rate": learning_rate, "max_seq_length": max_seq_length,
                "seed": seed, "precision": precision}
    inputs = {**data.fingerprint(), "weights": fingerprint(model)}
    for view in {cfg.teacher_view, cfg.student_view} - {None}:
        inputs[f"view {view}"] = data.view(view).fingerprint()
    record = {"config": settings, "inputs": inputs}
    if held_run(output, record) and os.path.exists(os.path.join(final, "config.json")):
        return final
    teacher = build_teacher(cfg.teacher, data)
    examples = pairs(data, cfg)
    vectors = teacher_vectors(teacher, [t for _, t in examples])
    student = SentenceTransformer(locate(model))
    base_length = student.max_seq_length
    if max_seq_length:
        student.max_seq_length = max_seq_length
    vectors = targets(student, examples, vectors, cfg)
    args = SentenceTransformerTrainingArguments(
        output_dir=output, num_train_epochs=epochs, per_device_train_batch_size=batch_size, learning_rate=learning_rate,
        warmup_steps=0.1, seed=seed, save_strategy="no", logging_steps=10, report_to=[], disable_tqdm=not shown(progress),
        **_device_arguments(precision))
    trainer = SentenceTransformerTrainer(model=student, args=args, train_dataset=hf_dataset(examples, vectors),
                                         loss=embedding_loss(student, cfg, vectors.shape[1]))
    write_record(output, record, model)
    trainer.train()
    student.max_seq_length = base_length  # a retriever keeps the model's own length (as ``train`` does)
    student.save(final + ".tmp")
    os.replace(final + ".tmp", final)
    return final
