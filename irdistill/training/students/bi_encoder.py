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

from .base import Objective, Student, register_student


class BiEncoderObjective(Objective):
    """Every query against every document of the batch: ``in_batch`` (B, B*N), its diagonal blocks ``scores``."""

    def __init__(self, model, loss, gather: bool = True):
        super().__init__(model, loss, gather)
        self.cosine = model.similarity_fn_name == "cosine"  # read now: under DDP the trainer wraps the model

    def embed(self, features) -> tuple:
        from sentence_transformers.base.losses.merged_forward import embed_columns

        return self.arrange(embed_columns(self.model, features))

    def arrange(self, columns: list[Tensor]) -> tuple:
        """The columns' embeddings (query, document_1 .. document_N) as queries (B, D) and documents (B, N, D)."""
        q, docs = columns[0], torch.stack(columns[1:], 1)
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

        def embed(self, columns: list[Tensor]) -> tuple:  # the columns' embeddings, made a mini-batch at a time
            return self.arrange(columns)

        def calculate_loss(self, reps, labels=None, *, with_backward: bool = False) -> Tensor:
            out = BiEncoderObjective.forward(self, [torch.cat(column) for column in reps], labels)
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
