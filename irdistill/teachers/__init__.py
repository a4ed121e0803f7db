"""Teachers score (query, passage) candidates into the score cache. Each kind is one class, registered by its
``kind``; ``build_teacher`` makes one from a spec (dict, YAML/JSON file, or shorthand ``kind:model``), and
``score_run`` scores a run with a teacher or spec of any kind, ensembles included."""

from .base import TEACHERS, ScoreStats, Teacher, register_teacher
from .bi_encoder import BiEncoderTeacher
from .bm25 import BM25Teacher
from .cross_encoder import CrossEncoderTeacher
from .embeddings_api import EmbeddingsAPITeacher
from .ensemble import EnsembleTeacher
from .llm import ListwiseLLMTeacher, PointwiseLLMTeacher
from .rerank_api import RerankAPITeacher
from .score import score_run
from .spec import build_teacher, parse_spec

__all__ = ["TEACHERS", "Teacher", "ScoreStats", "register_teacher", "build_teacher", "parse_spec", "score_run",
           "BiEncoderTeacher", "BM25Teacher", "CrossEncoderTeacher", "EmbeddingsAPITeacher", "EnsembleTeacher",
           "ListwiseLLMTeacher", "PointwiseLLMTeacher", "RerankAPITeacher"]
