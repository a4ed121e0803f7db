"""The bi-encoder student: a sentence-transformers ``SentenceTransformer``, scored by the cosine (or dot product,
per the model's ``similarity_fn_name``) of query and document embeddings, in-batch negatives included (as in DPR,
Karpukhin et al., 2020, and every distilled dense retriever since TAS-B)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Objective, Student, register_student


class BiEncoderObjective(Objective):
    """Every query against every document of the batch: ``in_batch`` (B, B*N), its diagonal blocks ``scores``."""

    def __init__(self, model, loss, gather: bool = True):
        super().__init__(model, loss, gather)
        self.cosine = model.similarity_fn_name == "cosine"  # read now: under DDP the trainer wraps the model

    def embed(self, features) -> tuple:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        emb = embed_columns(self.model, features)
        q, docs = emb[0], torch.stack(emb[1:], 1)  # (B, D), (B, N, D)
        if self.cosine:
            q, docs = F.normalize(q, dim=-1), F.normalize(docs, dim=-1)
        return q, docs, None

    def similarity(self, queries: Tensor, documents: Tensor, mask=None) -> Tensor:
        return queries @ documents.flatten(0, 1).T


@register_student
class BiEncoderStudent(Student):
    name = "bi-encoder"
    objective_class = BiEncoderObjective
    retriever = "dense"
    teacher = "bi-encoder"
