"""LLM teachers: pointwise (yes/no log-probabilities) and listwise (RankGPT sliding windows), two backends."""

from ...models.llm import OpenAIEndpoint, TransformersLM, make_backend
from .listwise import ListwiseLLMTeacher, parse_permutation
from .pointwise import PointwiseLLMTeacher

__all__ = ["OpenAIEndpoint", "TransformersLM", "make_backend", "ListwiseLLMTeacher", "PointwiseLLMTeacher",
           "parse_permutation"]
