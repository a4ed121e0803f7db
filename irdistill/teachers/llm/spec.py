"""How an LLM teacher's spec splits into the backend's options and the teacher's own."""

from __future__ import annotations

from ...errors import InputError
from ...models.llm import make_backend

BACKEND_KEYS = ("model", "endpoint", "gguf_file", "api_key", "top_logprobs", "request", "device", "dtype",
                "trust_remote_code", "allow_insecure")


class LLMSpec:
    """Mixin: ``from_spec`` builds the backend (transformers in-process, or an OpenAI-compatible endpoint) first."""

    @classmethod
    def from_spec(cls, spec, dataset=None, text_view=None):
        if not spec.get("model"):
            raise InputError(f"teacher {cls.kind} needs a model")
        spec = dict(spec)
        backend = make_backend(**{k: spec.pop(k) for k in BACKEND_KEYS if k in spec})
        return super().from_spec({"backend": backend, **spec}, dataset, text_view)
