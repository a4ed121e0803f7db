"""The cross-encoder student: a sentence-transformers ``CrossEncoder`` (one logit per (query, document) pair), as
the re-rankers distilled by Margin-MSE (Hofstätter et al., 2020) and Rank-DistiLLM (Schlatt et al., 2025). It has
no in-batch scores: the losses see each query's own list only."""

from __future__ import annotations

from torch import Tensor

from .base import Objective, Student, register_student

# A cross-encoder's logit has no fixed range, unlike a cosine: its losses read it as it is (temperature 1) instead of
# multiplying it by 20, which makes a fresh head's first scores one-hot and its first gradients huge
CROSS_ENCODER_LOSS = [{"name": "infonce", "temperature": 1.0},
                      {"name": "listwise-kl", "student_temperature": 1.0, "teacher_temperature": 0.3}]


class CrossEncoderObjective(Objective):
    """The logit of every (query, own candidate) pair; no in-batch scores, so nothing to gather."""

    def scores(self, inputs: list[list[str]]) -> tuple[Tensor, None]:
        from sentence_transformers.util import batch_to_device

        queries, columns = inputs[0], inputs[1:]
        pairs = [(q, col[b]) for b, q in enumerate(queries) for col in columns]
        tokens = batch_to_device(self.model.preprocess(pairs), self.model.device)
        return self.model(tokens)["scores"].view(len(queries), len(columns)), None

    def forward(self, inputs, labels, prompt=None, task=None):
        return super().forward(inputs, labels)


@register_student
class CrossEncoderStudent(Student):
    name = "cross-encoder"
    model_class = "CrossEncoder"
    objective_class = CrossEncoderObjective
    teacher = "cross-encoder"
    # no WiSE-FT: on a bi-encoder's weights its start is no working re-ranker, so no zero-shot model to keep half of
    recipe_defaults = {"loss": CROSS_ENCODER_LOSS, "merge_alpha": None}

    def load(self, path, cfg):
        return self._st()(path, num_labels=1, trust_remote_code=cfg.trust_remote_code)

    def dev_evaluator(self, queries, texts, relevant, candidates):
        """nDCG@10 re-ranking each held-out query's cached candidates (its positives included)."""
        from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

        samples = [{"query": queries[q], "positive": [texts[d] for d in relevant[q]],
                    "documents": [texts[d] for d in candidates.get(q, [])]} for q in sorted(queries)]
        return CrossEncoderRerankingEvaluator(samples, name="dev", write_csv=False)
