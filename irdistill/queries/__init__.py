"""Query generation for corpora without labels: LLM prompts (zero-shot, few-shot) and model-free queries (title,
sentence, span), filters, and ``generate_queries``, which writes them as a BEIR folder with pseudo-qrels."""

from .base import Doc, QueryGenerator
from .filters import ConsistencyFilter, Filters, copy_ratio, normalise
from .generate import GeneratedQueries, generate_queries, read_raw, select_rows
from .llm import LLMQueries
from .model_free import SentenceQueries, SpanQueries, TitleQueries
from .spec import GENERATORS, generate_from_specs, load_corpus, make_filters, make_generator, parse_options
from .templates import (
    FEW_SHOT, GENERIC_EXAMPLES, QUESTION, TEMPLATES, ZERO_SHOT, PromptTemplate, draw_examples, parse_query,
)

__all__ = [
    "Doc", "QueryGenerator", "ConsistencyFilter", "Filters", "copy_ratio", "normalise", "GeneratedQueries",
    "generate_queries", "read_raw", "select_rows", "LLMQueries", "SentenceQueries", "SpanQueries", "TitleQueries",
    "FEW_SHOT", "GENERIC_EXAMPLES", "QUESTION", "TEMPLATES", "ZERO_SHOT", "PromptTemplate", "draw_examples", "parse_query",
    "GENERATORS", "generate_from_specs", "load_corpus", "make_filters", "make_generator", "parse_options",
]
