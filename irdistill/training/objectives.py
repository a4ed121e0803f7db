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
