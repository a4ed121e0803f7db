"""The bi-encoder student: a sentence-transformers ``SentenceTransformer``, scored by the cosine (or dot product,
per the model's ``similarity_fn_name``) of query and document embeddings, in-batch negatives included (as in DPR,
Karpukhin et al., 2020, and every distilled dense retriever since TAS-B).

With ``mini_batch_size`` (GradCache: Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory
Limited Setup") every loss is cached: the batch is embedded in mini-batches without a graph, the loss and its
gradients with respect to the embeddings are computed over the whole batch, then each mini-batch is embedded again
with its graph and back-propagated. The in-batch pool is then bounded by ``batch_size``, the memory by the
mini-batch; the gradients are those of the plain objective (sentence-transformers' ``CachedLossMixin`` does the
passes, replaying each mini-batch's dropout)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses.base import apply_loss
from .base import Objective, Student, gather_documents, own_scores, register_student


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


def cached_objective(model, loss, gather: bool, mini_batch_size: int) -> Objective:
    """A ``BiEncoderObjective`` whose losses are cached (GradCache), ``mini_batch_size`` texts embedded at a time."""
    from sentence_transformers.base.losses.gradcache import CachedLossMixin

    class CachedBiEncoderObjective(CachedLossMixin, BiEncoderObjective):
        def forward(self, features, labels):
            return self.forward_cached(features, labels)

        def calculate_loss(self, reps, labels=None, *, with_backward: bool = False) -> Tensor:
            q, docs = torch.cat(reps[0]), torch.stack([torch.cat(column) for column in reps[1:]], 1)
            if self.cosine:
                q, docs = F.normalize(q, dim=-1), F.normalize(docs, dim=-1)
            n = docs.shape[1]
            if self.gather:
                docs, _ = gather_documents(docs)
            in_batch = self.similarity(q, docs)
            labels = torch.stack(labels) if isinstance(labels, list) else labels
            scores = own_scores(in_batch, n)
            out = apply_loss(self.loss, scores, labels.to(scores.device, scores.dtype), in_batch)
            total = sum(out.values()) if isinstance(out, dict) else out
            if with_backward:
                total.backward()
                total = total.detach()
            return total

    objective = CachedBiEncoderObjective(model, loss, gather)
    objective.mini_batch_size = mini_batch_size
    return objective


@register_student
class BiEncoderStudent(Student):
    name = "bi-encoder"
    objective_class = BiEncoderObjective
    retriever = "dense"
    teacher = "bi-encoder"
    cached_losses = True

    def objective(self, model, loss, cfg):
        if cfg.mini_batch_size:
            return cached_objective(model, loss, cfg.gather_across_devices, cfg.mini_batch_size)
        return super().objective(model, loss, cfg)
