"""What every query generator is: documents in, a fixed number of candidate queries per document out, with a stable
identity (everything that changes its output) that names the cache."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import NamedTuple

from ..errors import InputError


class Doc(NamedTuple):
    docid: str
    title: str
    text: str

    @property
    def passage(self) -> str:
        """Title and text joined the way ``Corpus.texts`` joins them."""
        return f"{self.title} {self.text}".strip()


def digest(obj) -> str:
    """12 hex digits of the SHA-1 of ``obj`` as sorted JSON."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


class QueryGenerator:
    """Subclasses set ``kind``, fill ``config()`` with everything that changes their output, and implement
    ``generate``. ``chunk_size``: documents per cached part (small for LLMs, so a killed run loses little)."""

    kind = "generator"
    chunk_size = 1000

    @classmethod
    def from_options(cls, model: str, options: dict) -> "QueryGenerator":
        """One from the command line: ``kind[:model]`` and ``--option key=value`` (the constructor's keywords)."""
        if model:
            raise InputError(f"generator {cls.kind} takes no model (it is model-free)")
        return construct(cls, options)

    def config(self) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": self.kind, **self.config()}

    def generate(self, docs: list[Doc], n: int, seed: int) -> list[list[str]]:
        """Exactly ``n`` single-line queries per document, in order; ``""`` where none could be made (the position
        stays, so query ids do not shift when a filter changes)."""
        raise NotImplementedError


def construct(cls, options: dict, what: str | None = None):
    """``cls(**options)``, with an unknown keyword or a value the constructor refuses as one-line InputErrors."""
    what = what or f"generator {cls.kind}"
    params = inspect.signature(cls.__init__).parameters.values()
    known = sorted(p.name for p in params if p.kind == p.KEYWORD_ONLY or p.kind == p.POSITIONAL_OR_KEYWORD)
    unknown = sorted(set(options) - set(known) - {"self"})
    if unknown:
        raise InputError(f"{what} has no option {', '.join(unknown)} "
                         f"(known: {', '.join(k for k in known if k not in ('self', 'backend')) or 'none'})")
    try:
        return cls(**options)
    except (TypeError, ValueError) as e:
        raise InputError(f"{what}: {e}") from None
