"""The ColBERT student (Khattab and Zaharia, 2020): a sentence-transformers ``MultiVectorEncoder`` scored by MaxSim,
``sum_i max_j q_i . d_j``, with query/document markers and [MASK] query augmentation (``irdistill.models.colbert``)."""

from __future__ import annotations

from torch import Tensor

from ...models.colbert import load_colbert
from .base import Objective, Student, register_student


class MultiVectorObjective(Objective):
    """MaxSim of each query against every candidate of the batch, through sentence-transformers' ColBERT scoring.

    With ``length_normalize`` (default) the MaxSim is divided by the query's token count: the losses' temperatures
    were chosen for cosine-scale scores, and MaxSim over 32 query tokens is 32 times that. Query augmentation pads
    every query to the same length, so the division never changes a ranking."""

    def __init__(self, model, loss, gather: bool = True, length_normalize: bool = True):
        super().__init__(model, loss, gather)
        self.length_normalize = length_normalize

    def embed(self, features) -> tuple:
        from sentence_transformers.base.losses.merged_forward import embed_columns_padded
        from sentence_transformers.util import stack_padded_token_embeddings

        features = [dict(f) for f in features]
        out = self.model(features[0], task=features[0].get("task", "query"))
        docs, docs_mask = stack_padded_token_embeddings(
            *embed_columns_padded(self.model, features[1:], task_default="document"))  # (B, N, T, D), (B, N, T)
        return (out["token_embeddings"], out["attention_mask"].bool()), docs, docs_mask

    def similarity(self, queries, documents: Tensor, mask: Tensor) -> Tensor:
        from sentence_transformers.multi_vector_encoder.scoring import colbert_scores

        tokens, query_mask = queries
        return colbert_scores(tokens, documents, queries_mask=query_mask, documents_mask=mask,
                              length_normalize=self.length_normalize)

    def get_config_dict(self) -> dict:
        return {**super().get_config_dict(), "length_normalize": self.length_normalize}


@register_student
class ColbertStudent(Student):
    name = "colbert"
    model_class = "MultiVectorEncoder"
    loader = staticmethod(load_colbert)
    objective_class = MultiVectorObjective
    retriever = "colbert"

    def training_arguments(self, model, cfg, columns):
        """The trainer applies prompts by column: the query marker to the query, the document marker to the rest;
        documents are cut at max_seq_length while training only (the saved model keeps its document_length)."""
        prompts = {c: model.prompts.get("query" if i == 0 else "document") or "" for i, c in enumerate(columns)}
        return {"prompts": prompts, "max_length": {"document": cfg.max_seq_length} if cfg.max_seq_length else None}

    def dev_evaluator(self, queries, texts, relevant, candidates):
        from sentence_transformers.multi_vector_encoder.evaluation import MultiVectorInformationRetrievalEvaluator

        return MultiVectorInformationRetrievalEvaluator(queries, texts, relevant, name="dev", write_csv=False)
