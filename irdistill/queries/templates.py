"""Prompts that ask an LLM for a query a passage answers, zero-shot or with example (query, passage) pairs, and the
parser that turns its answer into one clean line.

Zero-shot follows InPars' plain instruction style (Bonifacio et al. 2022); few-shot shows example pairs first, as InPars
(3 MS MARCO pairs) and Promptagator (Dai et al. 2022, up to 8 pairs of the target task) do. Here the examples are
earlier chat turns (user: the passage, assistant: its query), which instruction-tuned models follow more reliably
than one long completion prompt. Override any field with ``dataclasses.replace`` or write a new PromptTemplate."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PromptTemplate:
    """``user`` holds ``{passage}``; an example's answer is ``answer`` with ``{query}``. Passages are cut to
    ``max_words`` words, example passages to ``example_words``."""

    name: str
    user: str
    system: str | None = None
    answer: str = "{query}"
    max_words: int = 160
    example_words: int = 80

    def chat(self, passage: str, examples: list[tuple[str, str]] = ()) -> list[dict]:
        """Chat messages for one passage; ``examples`` are ``(query, passage)`` pairs shown first."""
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        for query, text in examples:
            msgs += [{"role": "user", "content": self.user.format(passage=_cut_words(text, self.example_words))},
                     {"role": "assistant", "content": self.answer.format(query=query)}]
        return msgs + [{"role": "user", "content": self.user.format(passage=_cut_words(passage, self.max_words))}]

    def describe(self) -> dict:
        return asdict(self)


def _cut_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


ZERO_SHOT = PromptTemplate(
    "zero-shot",
    system="You write search queries. Answer with one short query and nothing else.",
    user="Write a search query that the following passage answers.\n\nPassage: {passage}",
)
FEW_SHOT = PromptTemplate(
    "few-shot",
    system="You write search queries. For each passage, answer with one short query that the passage answers, in the "
           "style of the earlier queries, and nothing else.",
    user="Passage: {passage}",
)
QUESTION = PromptTemplate(
    "question",
    system="You write questions. Answer with one question and nothing else.",
    user="Write a question that the following passage answers.\n\nPassage: {passage}",
)
TEMPLATES = {t.name: t for t in (ZERO_SHOT, FEW_SHOT, QUESTION)}

# Fixed examples for few-shot prompts when no labelled collection is at hand, as InPars shows the same three MS MARCO
# pairs for every corpus. Written for this package, on topics far from the test collections, in the style of short
# web queries.
GENERIC_EXAMPLES = [
    ("where did the great fire of london start",
     "The Great Fire of London began in a bakery on Pudding Lane in September 1666 and burned for four days. It "
     "destroyed more than 13,000 houses and most of the buildings of the medieval City."),
    ("what makes sourdough bread taste sour",
     "Sourdough bread is leavened by a culture of wild yeasts and lactic acid bacteria rather than by baker's yeast. "
     "The bacteria produce lactic and acetic acids, which give the bread its sour taste and help it keep longer."),
    ("how do hash tables handle collisions",
     "A hash table stores key-value pairs in an array and uses a hash function to compute the index of each key. When "
     "two keys hash to the same index, the collision is resolved by chaining or by open addressing."),
]


def get_template(template: str | PromptTemplate) -> PromptTemplate:
    if isinstance(template, PromptTemplate):
        return template
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r} (known: {', '.join(TEMPLATES)})")
    return TEMPLATES[template]


def draw_examples(dataset, k: int = 3, seed: int = 0, min_grade: int = 1) -> list[tuple[str, str]]:
    """``k`` ``(query, passage)`` pairs from a labelled Dataset: distinct queries drawn at random under ``seed``, each
    with one of its passages graded ``min_grade`` or more. Few-shot prompts show them as examples."""
    pairs = sorted((q, min(d for d, g in docs.items() if g >= min_grade)) for q, docs in dataset.qrels.items()
                   if q in dataset.queries and any(g >= min_grade for g in docs.values()))
    if len(pairs) < k:
        raise ValueError(f"{dataset.name} has {len(pairs)} judged queries, fewer than the {k} examples asked for")
    picked = random.Random(seed).sample(pairs, k)
    texts = dataset.corpus.texts([d for _, d in picked])
    return [(" ".join(dataset.queries[q].split()), t) for (q, _), t in zip(picked, texts)]


# The parser ------------------------------------------------------------------------------------------------------
PARSER_VERSION = 1  # bump when parse_query changes what it returns (it is part of an LLM generator's id)
_PREFIX = re.compile(r"^(?:\s*(?:[-*•#>]+|\(?\d{1,2}[.):]|(?:search\s+|relevant\s+|generated\s+)?(?:query|question)"
                     r"\s*(?:\d{1,2})?\s*[:\-–]))+\s*", re.I)
_QUOTES = "\"'`“”‘’*_"


def parse_query(text: str) -> str:
    """The first line of ``text`` that holds a query, cleaned: bullets, numbering, markdown and prefixes such as
    ``Query:`` removed, surrounding quotes stripped, spaces collapsed. Preamble lines that end in a colon ("Here is a
    query:") are skipped. ``""`` when nothing is left."""
    for line in text.splitlines():
        line = line.strip()
        if not line or (line.endswith(":") and not _PREFIX.match(line)):
            continue
        line = _PREFIX.sub("", line).strip().strip(_QUOTES).strip()
        line = " ".join(line.split())
        if line:
            return line
    return ""
