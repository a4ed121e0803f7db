"""Student adapters: compute the student's scores of each query's candidates and hand them to a RankingLoss.

Each adapter is the ``loss`` a sentence-transformers trainer expects: columns (query, doc_1 .. doc_N), where doc_1 is
the positive, and labels (B, N) of teacher scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import RankingLoss


class BiEncoderObjective(nn.Module):
    """A SentenceTransformer student: cosine (or dot, per the model's ``similarity_fn_name``) of query and documents.
    Also gives the loss the in-batch scores of every query against every document of the batch."""

    def __init__(self, model, loss: RankingLoss):
        super().__init__()
        self.model, self.loss = model, loss

    def scores(self, features) -> tuple[Tensor, Tensor]:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        emb = embed_columns(self.model, features)
        q, docs = emb[0], torch.stack(emb[1:], 1)  # (B, D), (B, N, D)
        if self.model.similarity_fn_name == "cosine":
            q, docs = F.normalize(q, dim=-1), F.normalize(docs, dim=-1)
        b, n, d = docs.shape
        return torch.einsum("bd,bnd->bn", q, docs), q @ docs.reshape(b * n, d).T

    def forward(self, features, labels: Tensor):
        scores, in_batch = self.scores(features)
        return self.loss(scores, labels.to(scores.dtype), in_batch)

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, **self.loss.config()}


class CrossEncoderObjective(nn.Module):
    """A CrossEncoder student: the logit of every (query, document) pair; no in-batch scores."""

    def __init__(self, model, loss: RankingLoss):
        super().__init__()
        self.model, self.loss = model, loss

    def scores(self, inputs: list[list[str]]) -> Tensor:
        from sentence_transformers.util import batch_to_device

        queries, columns = inputs[0], inputs[1:]
        pairs = [(q, col[b]) for b, q in enumerate(queries) for col in columns]
        tokens = batch_to_device(self.model.preprocess(pairs), self.model.device)
        return self.model(tokens)["scores"].view(len(queries), len(columns))

    def forward(self, inputs, labels, prompt=None, task=None):
        if isinstance(labels, list):
            labels = torch.stack(labels)
        scores = self.scores(inputs)
        return self.loss(scores, labels.to(scores.device, scores.dtype))

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, **self.loss.config()}


class MultiVectorObjective(nn.Module):
    """A MultiVectorEncoder (ColBERT) student: MaxSim of each query against its candidates, and against every
    candidate of the batch (the in-batch scores), through sentence-transformers' ColBERT scoring.

    With ``length_normalize`` (default) the MaxSim is divided by the query's token count: the losses' temperatures
    were chosen for cosine-scale scores, and MaxSim over 32 query tokens is 32 times that. Query augmentation pads
    every query to the same length, so the division never changes a ranking."""

    def __init__(self, model, loss: RankingLoss, length_normalize: bool = True):
        super().__init__()
        self.model, self.loss, self.length_normalize = model, loss, length_normalize

    def scores(self, features) -> tuple[Tensor, Tensor]:
        from sentence_transformers.base.losses.merged_forward import embed_columns_padded
        from sentence_transformers.multi_vector_encoder.scoring import colbert_scores
        from sentence_transformers.util import stack_padded_token_embeddings

        features = [dict(f) for f in features]
        out = self.model(features[0], task=features[0].get("task", "query"))
        docs, docs_mask = stack_padded_token_embeddings(
            *embed_columns_padded(self.model, features[1:], task_default="document"))  # (B, N, T, D), (B, N, T)
        in_batch = colbert_scores(out["token_embeddings"], docs, queries_mask=out["attention_mask"].bool(),
                                  documents_mask=docs_mask, length_normalize=self.length_normalize)  # (B, B*N)
        b, n = docs.shape[:2]
        own = torch.arange(b, device=in_batch.device)
        return in_batch.view(b, b, n)[own, own], in_batch

    def forward(self, features, labels: Tensor):
        scores, in_batch = self.scores(features)
        return self.loss(scores, labels.to(scores.dtype), in_batch)

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, "length_normalize": self.length_normalize, **self.loss.config()}


class SparseObjective(nn.Module):
    """A SparseEncoder (SPLADE) student: dot products of the sparse query and document vectors (and of each query
    with every document of the batch). Wrap it in sentence-transformers' ``SpladeLoss``, which embeds the columns,
    calls ``compute_loss_from_embeddings`` and adds the FLOPS regularisers of queries and documents (see
    ``sparse_objective``)."""

    def __init__(self, model, loss: RankingLoss):
        super().__init__()
        self.model, self.loss = model, loss

    def scores(self, embeddings: list[Tensor]) -> tuple[Tensor, Tensor]:
        q, docs = embeddings[0], torch.stack(embeddings[1:], 1)  # (B, V), (B, N, V)
        b, n, v = docs.shape
        in_batch = q @ docs.reshape(b * n, v).T
        own = torch.arange(b, device=q.device)
        return in_batch.view(b, b, n)[own, own], in_batch

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor):
        scores, in_batch = self.scores(embeddings)
        return self.loss(scores, labels.to(scores.device, scores.dtype), in_batch)

    def forward(self, features, labels: Tensor):
        from sentence_transformers.base.losses.merged_forward import embed_columns

        return self.compute_loss_from_embeddings(embed_columns(self.model, features), labels)

    def get_config_dict(self) -> dict:
        return {"loss": type(self.loss).__name__, **self.loss.config()}


def sparse_objective(model, loss: RankingLoss, query_weight: float, document_weight: float):
    """``SparseObjective`` plus FLOPS regularisation (Paria et al., 2020) of the query and document vectors,
    weighted ``query_weight`` and ``document_weight``; the sentence-transformers trainer raises both weights
    quadratically from 0 over the first third of training, as SPLADE does."""
    from sentence_transformers.sparse_encoder.losses import SpladeLoss

    return SpladeLoss(model, SparseObjective(model, loss), document_regularizer_weight=document_weight,
                      query_regularizer_weight=query_weight)
