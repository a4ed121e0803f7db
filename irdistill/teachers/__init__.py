"""Teachers score (query, passage) candidates; ``build_teacher`` makes one from a spec (dict, YAML/JSON file, or
shorthand ``kind:model``)."""

from __future__ import annotations

import json
import os

from ..errors import InputError
from .base import Teacher
from .score import ScoreStats, cache_key, parse_shard, score_run

KINDS = ("cross-encoder", "bi-encoder", "bm25", "llm-pointwise", "llm-listwise", "ensemble")


def parse_spec(spec) -> dict:
    """A dict as is; a ``.yaml``/``.yml``/``.json`` file's content; else ``kind`` or ``kind:model``."""
    if isinstance(spec, dict):
        out = dict(spec)
    elif str(spec).endswith((".yaml", ".yml", ".json")):
        import yaml

        if not os.path.exists(spec):
            raise InputError("no such file", spec)
        with open(spec) as f:
            try:
                out = yaml.safe_load(f) if not spec.endswith(".json") else json.load(f)
            except (yaml.YAMLError, json.JSONDecodeError) as e:
                line = getattr(getattr(e, "problem_mark", None), "line", None)
                raise InputError(f"malformed teacher file ({getattr(e, 'problem', None) or e})", spec,
                                 None if line is None else line + 1) from None
        if not isinstance(out, dict):
            raise InputError("a teacher file holds a mapping with a 'kind'", spec)
    else:
        kind, _, model = str(spec).partition(":")
        out = {"kind": kind, **({"model": model} if model else {})}
    if out.get("kind") not in KINDS:
        raise InputError(f"unknown teacher kind {out.get('kind')!r} (choose from {', '.join(KINDS)})")
    return out


def build_teacher(spec, dataset=None) -> Teacher:
    """A Teacher from a spec. ``bm25`` without an ``index`` opens (or builds) the dataset's BM25 index;
    ``text_view: en`` makes any teacher read that text view of the documents (Translate-Distill)."""
    spec = parse_spec(spec)
    kind, view = spec.pop("kind"), spec.pop("text_view", None)
    teacher = _build(kind, spec, dataset, view)
    teacher.text_view = view
    return teacher


def _build(kind: str, spec: dict, dataset, view: str | None) -> Teacher:
    if kind in ("cross-encoder", "bi-encoder", "llm-pointwise", "llm-listwise") and not spec.get("model"):
        raise InputError(f"teacher {kind} needs a model")
    try:
        if kind == "cross-encoder":
            from .cross_encoder import CrossEncoderTeacher

            return CrossEncoderTeacher(**spec)
        if kind == "bi-encoder":
            from .bi_encoder import BiEncoderTeacher

            return BiEncoderTeacher(**spec)
        if kind == "bm25":
            from ..index.bm25 import open_bm25
            from ..index.retrieve import index_path
            from .bm25 import BM25Teacher

            if "index" not in spec:
                if dataset is None:
                    raise InputError("teacher bm25 needs an index or a dataset")
                path = index_path(dataset, "bm25") + (f"-{view}" if view else "")
                spec["index"] = open_bm25(dataset.view(view), path)
            return BM25Teacher(**spec)
        if kind in ("llm-pointwise", "llm-listwise"):
            from .llm import ListwiseLLMTeacher, PointwiseLLMTeacher, make_backend

            backend_keys = ("model", "endpoint", "gguf_file", "api_key", "top_logprobs", "request", "device", "dtype",
                            "trust_remote_code")
            backend = make_backend(**{k: spec.pop(k) for k in backend_keys if k in spec})
            cls = PointwiseLLMTeacher if kind == "llm-pointwise" else ListwiseLLMTeacher
            return cls(backend, **spec)
    except TypeError as e:  # an unknown option in the spec
        raise InputError(f"teacher {kind}: {e}") from None
    raise InputError(f"teacher {kind} is scored with score_spec (it combines other teachers)")


__all__ = ["KINDS", "Teacher", "ScoreStats", "build_teacher", "cache_key", "parse_spec", "parse_shard", "score_run"]
