"""The SPLADE student (Formal et al., 2021): a sentence-transformers ``SparseEncoder`` (MLM head, max pooling of
log(1 + relu)), scored by dot products of sparse query and document vectors, with FLOPS regularisation (Paria et
al., 2020) of both."""

from __future__ import annotations

import torch
from torch import Tensor

from ...models.splade import load_splade
from .base import Objective, Student, register_student

FLOPS = {"query": 5e-5, "document": 3e-5}  # sentence-transformers' SPLADE defaults


class SparseObjective(Objective):
    """Dot products of the sparse query and document vectors (each query against every document of the batch).
    Wrapped in sentence-transformers' ``SpladeLoss``, which embeds the columns, calls
    ``compute_loss_from_embeddings`` and adds the FLOPS regularisers."""

    def embed(self, embeddings: list[Tensor]) -> tuple:
        return embeddings[0], torch.stack(embeddings[1:], 1), None  # (B, V), (B, N, V)

    def similarity(self, queries: Tensor, documents: Tensor, mask=None) -> Tensor:
        return queries @ documents.flatten(0, 1).T

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor):
        return super().forward(embeddings, labels)

    def forward(self, features, labels: Tensor):
        from sentence_transformers.base.losses.merged_forward import embed_columns

        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)


@register_student
class SpladeStudent(Student):
    name = "splade"
    model_class = "SparseEncoder"
    loader = staticmethod(load_splade)
    retriever = "splade"

    def objective(self, model, loss, cfg):
        """``SparseObjective`` plus FLOPS regularisation of the query and document vectors, weighted by
        ``cfg.flops`` (default ``FLOPS``); the trainer raises both weights quadratically from 0 over the first
        third of training, as SPLADE does."""
        from sentence_transformers.sparse_encoder.losses import SpladeLoss

        flops = {**FLOPS, **(cfg.flops or {})}
        return SpladeLoss(model, SparseObjective(model, loss), document_regularizer_weight=flops["document"],
                          query_regularizer_weight=flops["query"])

    def dev_evaluator(self, queries, texts, relevant, candidates):
        from sentence_transformers.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

        return SparseInformationRetrievalEvaluator(queries, texts, relevant, name="dev", write_csv=False)
