"""Embedding distillation: the student's embeddings of a collection's texts regress a teacher's (EmbedDistill, Kim et
al., 2023; multilingual knowledge distillation, Reimers and Gurevych, 2020). No labels and no queries: the texts of
the target collection are the training data.

Each example is a text the student reads and the teacher's vector of a text the teacher reads: the same passage, or,
with ``teacher_view``, the passage's text in another view (the English original of a German passage, so the student
learns to put a German passage where the teacher puts its English source). ``sentences`` adds every sentence of each
text as an example of its own (more, shorter examples from the same collection). Teacher vectors come from any teacher
with ``embed(texts, role)`` (``embeddings-api``, ``bi-encoder``), kept by content, so a rerun embeds nothing again.
When the sizes differ, a learned projection maps the student's vectors to the teacher's (on the loss, not saved).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..data.dataset import Dataset
from ..errors import InputError

METRICS = ("cosine", "mse", "l2")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÄÖÜ0-9\"'(])")


@dataclass
class EmbeddingConfig:
    teacher: dict                   # a teacher spec whose teacher has embed(texts, role)
    teacher_view: str | None = None  # the teacher reads this text view of each passage (default: the student's)
    student_view: str | None = None  # the student reads this one (default: the corpus)
    sentences: bool = False         # also each sentence of every text, as an example of its own
    both_views: bool = True         # with teacher_view: the teacher's view is also a student text (its own target)
    metric: str = "cosine"          # cosine, mse or l2 (sentence-transformers' EmbedDistillLoss)
    weight: float = 1.0             # beside score losses: this loss's share

    def check(self, where=None) -> None:
        if self.metric not in METRICS:
            raise InputError(f"embeddings.metric must be one of {', '.join(METRICS)}, not {self.metric!r}", where)
        if not (isinstance(self.weight, (int, float)) and self.weight > 0):
            raise InputError(f"embeddings.weight must be a number above 0, not {self.weight!r}", where)


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


def hf_dataset(examples: list[tuple[str, str]], vectors: np.ndarray):
    """A Hugging Face dataset of the student's texts (``text``) and the teacher's vectors (``label``)."""
    from datasets import Dataset as HFDataset

    return HFDataset.from_dict({"text": [s for s, _ in examples], "label": vectors.tolist()})


def embedding_loss(model, cfg: EmbeddingConfig, teacher_dim: int):
    from sentence_transformers.sentence_transformer.losses import EmbedDistillLoss

    dim = model.get_sentence_embedding_dimension()
    return EmbedDistillLoss(model, distance_metric=cfg.metric, projection_dim=None if dim == teacher_dim else teacher_dim)


def train_embeddings(model: str, data: Dataset, cfg: EmbeddingConfig, output: str, epochs: float = 1.0,
                     batch_size: int = 32, learning_rate: float = 2e-5, max_seq_length: int | None = 256, seed: int = 42,
                     precision: str = "auto", progress: bool = True) -> str:
    """Train ``model`` (a SentenceTransformer) on ``data``'s texts against the teacher's vectors alone; returns the
    folder of the final model (``<output>/final``, which loads in sentence-transformers unchanged). A finished
    folder is returned as it is."""
    import os

    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from ..data.io import check_output
    from ..models import locate
    from ..progress import shown
    from ..teachers import build_teacher
    from .train import _device_arguments

    cfg.check()
    check_output(output, "folder")
    final = os.path.join(output, "final")
    if os.path.exists(os.path.join(final, "config.json")):
        return final
    teacher = build_teacher(cfg.teacher, data)
    examples = pairs(data, cfg)
    vectors = teacher_vectors(teacher, [t for _, t in examples])
    student = SentenceTransformer(locate(model))
    if max_seq_length:
        student.max_seq_length = max_seq_length
    args = SentenceTransformerTrainingArguments(
        output_dir=output, num_train_epochs=epochs, per_device_train_batch_size=batch_size, learning_rate=learning_rate,
        warmup_steps=0.1, seed=seed, save_strategy="no", logging_steps=10, report_to=[], disable_tqdm=not shown(progress),
        **_device_arguments(precision))
    trainer = SentenceTransformerTrainer(model=student, args=args, train_dataset=hf_dataset(examples, vectors),
                                         loss=embedding_loss(student, cfg, vectors.shape[1]))
    trainer.train()
    student.save(final + ".tmp")
    os.replace(final + ".tmp", final)
    return final
