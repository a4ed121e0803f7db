"""What every student is, and the one registry of student architectures.

A student is one class in one file: how its model loads, how its scores of a batch reach the losses
(``objective``), the sentence-transformers trainer and training arguments it runs on, and its dev evaluator.
``train`` runs the flow all students share and never asks which student it has.

A new architecture::

    @register_student
    class MyStudent(Student):
        name = "mine"
        model_class = "SentenceTransformer"    # its sentence-transformers class (model, trainer, arguments)
        objective_class = MyObjective          # an Objective: the student's scores of a batch, for the losses
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ...errors import InputError
from ..losses import RankingLoss
from ..losses.base import apply_loss

STUDENTS: dict[str, "Student"] = {}


def register_student(cls: type["Student"]) -> type["Student"]:
    """Add a student class to the registry under ``cls.name`` (usable as a class decorator)."""
    STUDENTS[cls.name] = cls()
    return cls


def get_student(name: str) -> "Student":
    if name not in STUDENTS:
        raise InputError(f"unknown student {name!r} (choose from {', '.join(STUDENTS)})")
    return STUDENTS[name]


class Student:
    """Class attributes: ``name`` (``student:`` in a training config), ``model_class`` (its sentence-transformers
    class, whose trainer and training arguments it trains with), ``retriever`` (the index kind that retrieves with a
    trained model; None for re-rankers) and ``teacher`` (the teacher kind that scores with one, if any)."""

    name: ClassVar[str] = ""
    model_class: ClassVar[str] = "SentenceTransformer"
    loader: ClassVar = None          # a function that loads the model by path, when the class alone does not
    objective_class: ClassVar[type] = None
    retriever: ClassVar[str | None] = None
    teacher: ClassVar[str | None] = None
    cached_losses: ClassVar[bool] = False  # takes mini_batch_size (GradCache: the objective embeds in mini-batches)
    recipe_defaults: ClassVar[dict] = {}  # settings a recipe (``irdistill adapt``) gives this kind over its TRAINING

    def _st(self, suffix: str = ""):
        import sentence_transformers

        return getattr(sentence_transformers, self.model_class + suffix)

    @property
    def trainer(self):
        return self._st("Trainer")

    @property
    def arguments(self):
        return self._st("TrainingArguments")

    def load(self, path: str, cfg):
        """The model to train, from a local folder or hub name (``cfg``: the TrainConfig)."""
        return self.loader(path) if self.loader else self._st()(path, trust_remote_code=cfg.trust_remote_code)

    def objective(self, model, loss: RankingLoss, cfg) -> nn.Module:
        """The ``loss`` the trainer calls with a batch: columns (query, doc_1 .. doc_N; doc_1 the positive) and
        labels (B, N) of teacher scores."""
        return self.objective_class(model, loss, cfg.gather_across_devices)

    def training_arguments(self, model, cfg, columns: list[str]) -> dict:
        """Extra training arguments for this student (``columns``: the dataset's text columns)."""
        return {}

    def dev_evaluator(self, queries: dict[str, str], texts: dict[str, str], relevant: dict[str, set[str]],
                      candidates: dict[str, list[str]]):
        """A sentence-transformers evaluator of nDCG@10 on held-out queries (``texts``: their candidates' and
        positives' texts by id; ``candidates``: each query's cached candidates)."""
        from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

        return InformationRetrievalEvaluator(queries, texts, relevant, name="dev", write_csv=False)


class Objective(nn.Module):
    """A student's scores of a batch, handed to a RankingLoss: ``scores`` (B, N) of each query's own candidates and,
    for students that score every query against every document, ``in_batch`` (B, M) whose first B*N columns are the
    batch's own candidates in order (row i's at i*N .. i*N+N-1).

    Subclasses ``embed`` a batch into queries and documents (B, N, ...) and score them with ``similarity``. Under
    DDP (``gather``, the default) every process scores its queries against the documents of all processes, its own
    first, gathered with gradients (``gather_documents``), so N processes with batch B train as one with batch N*B."""

    def __init__(self, model, loss: RankingLoss, gather: bool = True):
        super().__init__()
        self.model, self.loss, self.gather = model, loss, gather

    def embed(self, features) -> tuple:
        """``(queries, documents (B, N, ...), documents' token mask (B, N, T) or None)``."""
        raise NotImplementedError

    def similarity(self, queries, documents: Tensor, mask: Tensor | None) -> Tensor:
        """(B, B'*N): every query against every document of ``documents`` (B', N, ...)."""
        raise NotImplementedError

    def scores(self, features) -> tuple[Tensor, Tensor | None]:
        queries, docs, mask = self.embed(features)
        n = docs.shape[1]
        if self.gather:
            docs, mask = gather_documents(docs, mask)
        in_batch = self.similarity(queries, docs, mask)
        return own_scores(in_batch, n), in_batch

    def forward(self, features, labels):
        if isinstance(labels, list):
            labels = torch.stack(labels)
        scores, in_batch = self.scores(features)
        return apply_loss(self.loss, scores, labels.to(scores.device, scores.dtype), in_batch)

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, **self.loss.config()}


def gather_documents(docs: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The documents (B, N, ...) of every process of a distributed run, this process's first, then the others in rank
    order, through sentence-transformers' all-gather that keeps gradients for all of them (its backward sums each
    process's gradients into the process that made the embeddings, so with DDP's averaging the update is exactly
    that of one process with the whole batch). Token masks (B, N, T) are padded to the longest T first. Outside a
    distributed run the documents come back as they are."""
    from sentence_transformers.util.distributed import all_gather, all_gather_padded, get_rank, get_world_size

    world = get_world_size()
    if world == 1:
        return docs, mask
    b, n = docs.shape[:2]
    if mask is None:
        docs = all_gather(docs, with_grad=True)
    else:
        flat, flat_mask = all_gather_padded(docs.flatten(0, 1), mask.flatten(0, 1), with_grad=True)
        docs, mask = flat.view(world * b, n, *flat.shape[1:]), flat_mask.view(world * b, n, -1)
    shift = -get_rank() * b  # this process's block first: its queries' own candidates stay at columns i*N ..
    return docs.roll(shift, 0), None if mask is None else mask.roll(shift, 0)


def own_scores(in_batch: Tensor, n: int) -> Tensor:
    """(B, N): each query's scores of its own candidates, out of the (B, B*N) in-batch scores."""
    b = in_batch.shape[0]
    own = torch.arange(b, device=in_batch.device)
    return in_batch[:, : b * n].view(b, b, n)[own, own]
