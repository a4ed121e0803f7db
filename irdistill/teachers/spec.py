"""Teacher specs: a dict, a YAML/JSON file, or the shorthand ``kind:model``, plus ``key=value`` options; and
``build_teacher``, which turns one into a Teacher of the registered kind."""

from __future__ import annotations

from ..errors import InputError, brief, check_options, key_value, keyword_types, read_config
from ..index.bm25 import BM25Index
from .base import TEACHERS, Teacher

FILES = (".yaml", ".yml", ".json")
# option -> its range, for every kind that takes it (the constructors' annotations give the types)
RANGES = {"batch_size": {"low": 1}, "depth": {"low": 1}, "window": {"low": 1}, "step": {"low": 1},
          "max_words": {"low": 1}, "max_length": {"low": 1}, "max_tokens": {"low": 1}, "memo": {"low": 0},
          "workers": {"low": 1}, "top_logprobs": {"low": 1}, "k1": {"low": 0}, "b": {"low": 0, "high": 1}}
UNANNOTATED = {"labels": list | tuple, "index": str | BM25Index}  # options whose constructor leaves their type unsaid


def parse_spec(spec, options=()) -> dict:
    """A dict as is; a ``.yaml``/``.yml``/``.json`` file's content; else ``kind`` or ``kind:model``. Each option
    ``key=value`` (the value read as YAML) is set on the spec. The kind, option names, types and ranges are checked
    (``check_spec``) before anything loads; errors name the file, or ``--option``.

    >>> parse_spec("cross-encoder:my/model", ["max-length=256"])
    {'kind': 'cross-encoder', 'model': 'my/model', 'max_length': 256}
    """
    source = str(spec) if not isinstance(spec, dict) and str(spec).endswith(FILES) else None
    if isinstance(spec, dict):
        out = dict(spec)
    elif source:
        out = read_config(source, "teacher file")
        if not isinstance(out, dict):
            raise InputError("a teacher file holds a mapping with a 'kind'", source)
    else:
        kind, _, model = str(spec).partition(":")
        out = {"kind": kind, **({"model": model} if model else {})}
    given = set()
    for opt in options or ():
        key, value = key_value(opt, "--option")
        given.add(key.replace("-", "_"))
        out[key.replace("-", "_")] = value
    try:
        return check_spec(out, given)
    except InputError as e:
        if e.path is None and source:
            raise InputError(e.message, source) from None
        raise


def check_spec(spec: dict, given=()) -> dict:
    """``spec`` if its kind is known and its options are the kind's, of their types and in range (an option in
    ``given`` came from ``--option`` and is named so); else InputError. Kinds may check more (``check_spec``)."""
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in TEACHERS:
        raise InputError(f"unknown teacher kind {brief(kind)} (choose from {', '.join(TEACHERS)})")
    cls, types = TEACHERS[kind], _options(TEACHERS[kind])
    for key in spec:
        if not isinstance(key, str):
            raise InputError(f"teacher option names are text, not {brief(key)}")
        if key not in types:
            known = ", ".join(sorted(set(types) - {"kind"}))
            raise InputError(f"{'--option' if key in given else 'option'} {key}: teacher {kind} has no such option "
                             f"(known: {known})")
    check_options({k: v for k, v in spec.items() if k not in given}, types, RANGES)
    check_options({k: v for k, v in spec.items() if k in given}, types, RANGES, "--option")
    if hasattr(cls, "check_spec"):
        cls.check_spec(spec)
    return spec


def _options(cls) -> dict:
    """Option -> type of a teacher kind: its constructor's keywords (an LLM's backend's too), ``kind``, ``text_view``
    and ``query_view``."""
    from .llm.spec import LLMSpec

    out = keyword_types(cls.__init__, skip=("dataset", "backend"))  # a defaultdict if it takes **kwargs
    out.update({k: UNANNOTATED[k] for k in UNANNOTATED.keys() & out.keys() if out[k] is object})
    out.update({**(backend_types() if issubclass(cls, LLMSpec) else {}), "kind": str, "text_view": str | None,
                "query_view": str | None})
    return out


def backend_types() -> dict:
    """Option -> type of the options an LLM teacher or generator hands its backend (``make_backend``)."""
    from ..models.llm import OpenAIEndpoint, TransformersLM, make_backend
    from .llm.spec import BACKEND_KEYS

    types = keyword_types(make_backend, TransformersLM.__init__, OpenAIEndpoint.__init__)
    return {k: types[k] for k in BACKEND_KEYS}


def build_teacher(spec, dataset=None, options=()) -> Teacher:
    """A Teacher from a spec (see ``parse_spec``). ``text_view: en`` makes any teacher read that text view of the
    documents (Translate-Distill), ``query_view: manual`` that view of the queries (a rewrite, as in DiSCo);
    teachers that need the collection (BM25's index, an ensemble's fit split) take it from ``dataset``."""
    spec = parse_spec(spec, options)
    kind, view, query_view = spec.pop("kind"), spec.pop("text_view", None), spec.pop("query_view", None)
    teacher = TEACHERS[kind].from_spec(spec, dataset, view)
    teacher.text_view, teacher.query_view = view, query_view
    return teacher
