"""Cross-encoder teacher: any sentence-transformers CrossEncoder / Hugging Face sequence-classification model."""

from __future__ import annotations

import numpy as np

from ..models import fingerprint, loading, locate
from .base import Teacher, register_teacher


def _default_dtype(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


@register_teacher
class CrossEncoderTeacher(Teacher):
    """Raw logits (no sigmoid) of a cross-encoder, so margins keep their scale.

    ``predict`` of sentence-transformers already sorts each batch by length. On a GPU the model runs in bfloat16
    unless ``dtype`` says otherwise; ``backend="onnx"`` or ``"openvino"`` uses those runtimes (with optimum installed).
    ``max_length`` defaults to the model's own (what it was saved with, e.g. the length a student trained at).
    ``quantize="int8"`` applies torch's dynamic int8 quantisation to the linear layers (CPU)."""

    kind = "cross-encoder"
    scale = "logit"

    def __init__(self, model: str, max_length: int | None = None, batch_size: int = 32, device: str | None = None,
                 dtype: str | None = None, backend: str = "torch", revision: str | None = None,
                 trust_remote_code: bool = False, quantize: str | None = None, cross_encoder=None):
        import torch
        from sentence_transformers import CrossEncoder

        self.name, self.batch_size, self.backend = model, batch_size, backend
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or _default_dtype(self.device)
        path = locate(model)
        kwargs = {"dtype": getattr(torch, self.dtype)} if backend == "torch" else {}
        with loading(model):
            self.model = cross_encoder or CrossEncoder(path, device=self.device, backend=backend, revision=revision,
                                                       trust_remote_code=trust_remote_code, model_kwargs=kwargs)
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.max_length = self.model.max_seq_length  # in the cache key: the length that produced the scores
        self.version = fingerprint(path) or revision or getattr(self.model.config, "_commit_hash", None)
        self.quantize = quantize
        if quantize == "int8":
            torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        elif quantize is not None:
            raise ValueError(f"unknown quantize option {quantize!r} (only int8)")

    def config(self) -> dict:
        return {"model": self.name, "version": self.version, "max_length": self.max_length, "dtype": self.dtype,
                "backend": self.backend, "quantize": self.quantize}

    def score_pairs(self, queries: list[str], passages: list[str]) -> np.ndarray:
        import torch

        scores = self.model.predict(list(zip(queries, passages)), batch_size=self.batch_size, show_progress_bar=False,
                                    activation_fn=torch.nn.Identity(), convert_to_numpy=True)
        return np.asarray(scores, dtype=np.float32).reshape(len(queries), -1)[:, -1]
