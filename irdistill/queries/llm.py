"""Queries from an LLM through irdistill's backends (transformers in-process, GGUF included; OpenAI-compatible servers
such as vLLM or llama.cpp): one prompt per passage, ``n`` sampled completions, each parsed to one line."""

from __future__ import annotations

from ..errors import InputError
from .base import Doc, QueryGenerator, construct, digest
from .templates import GENERIC_EXAMPLES, PARSER_VERSION, PromptTemplate, draw_examples, get_template, parse_query


class LLMQueries(QueryGenerator):
    """``backend``: a ``TransformersLM`` or ``OpenAIEndpoint`` (``irdistill.models.llm.make_backend``).
    ``examples``: ``(query, passage)`` pairs shown before the passage (``draw_examples`` takes them from a labelled
    collection); None shows ``GENERIC_EXAMPLES`` with the few-shot template and none with the others.
    ``greedy_first``: a passage's first query is the greedy answer and the others are sampled at ``temperature`` with
    ``top_p`` (False: all sampled; ``temperature`` 0: all greedy, so copies). ``stop``: strings that end a completion.
    ``batch_size`` (prompts per forward pass, or requests in flight) changes speed, not the queries.

    Defaults from benchmarks/bench_queries.py with SmolLM2-135M on 10 SciFact and 10 Cranfield passages: the
    few-shot prompt with the generic examples gives short questions about the passage (11 and 15 words on average,
    90-100% kept by the default filters, BM25 finds the source passage first for 90% / 70%), where zero-shot prompts
    give summaries (30-40 words, 10-40% kept) and examples from the other collection give long copies of the passage
    (20-30% kept); sampling at 0.7 lowers BM25's top-1 rate to 62% / 50% and at 1.0 to 38% / 27%, hence greedy first.
    On a shared CPU set ``torch.set_num_threads(1)``: 3.6 times less CPU per passage there than two threads."""

    kind = "llm"
    chunk_size = 64

    def __init__(self, backend, template: str | PromptTemplate = "few-shot", examples: list[tuple[str, str]] | None = None,
                 greedy_first: bool = True, temperature: float = 0.7, top_p: float = 0.95, max_tokens: int = 48,
                 stop: tuple[str, ...] = ("\n",), batch_size: int = 16):
        self.backend, self.template = backend, get_template(template)
        if examples is None:
            examples = GENERIC_EXAMPLES if self.template.name == "few-shot" else []
        self.examples = [(str(q), str(p)) for q, p in examples]
        self.greedy_first, self.temperature, self.top_p = greedy_first, temperature, top_p
        self.max_tokens, self.stop, self.batch_size = max_tokens, list(stop or []), batch_size

    @classmethod
    def from_options(cls, model: str, options: dict) -> "LLMQueries":
        """``llm:MODEL`` from the command line: the backend's options (``endpoint``, ``gguf_file``, ``device``, ``dtype``...)
        go to ``make_backend``, the rest to the constructor; ``examples=DATASET`` draws ``examples_k`` (3) pairs from
        its ``examples_split`` (train). Everything is checked before the model loads."""
        from ..data import load_dataset
        from ..models.llm import make_backend
        from ..teachers.llm.spec import BACKEND_KEYS

        if not model:
            raise InputError("generator llm needs a model: llm:MODEL")
        opts = dict(options)
        backend = {k: opts.pop(k) for k in BACKEND_KEYS if k in opts and k != "model"}
        source, split, k = opts.pop("examples", None), opts.pop("examples_split", "train"), opts.pop("examples_k", 3)
        if source is not None:
            try:
                opts["examples"] = draw_examples(load_dataset(str(source), str(split)), k)
            except ValueError as e:
                raise InputError(f"examples: {e}", str(source)) from None
        gen = construct(cls, {**opts, "backend": None})
        gen.backend = make_backend(model, **backend)
        return gen

    def config(self) -> dict:
        return {**self.backend.describe(), "template": self.template.describe(), "examples": self.examples,
                "greedy_first": self.greedy_first, "temperature": self.temperature,
                "top_p": self.top_p if self.temperature > 0 else None, "max_tokens": self.max_tokens, "stop": self.stop,
                "parser": PARSER_VERSION}

    def chats(self, docs: list[Doc]) -> list[list[dict]]:
        return [self.template.chat(d.passage, self.examples) for d in docs]

    def generate(self, docs: list[Doc], n: int, seed: int) -> list[list[str]]:
        if not docs:
            return []
        chats = self.chats(docs)
        chunk_seed = int(digest([seed, docs[0].docid, len(docs)]), 16) % (2**31)  # the same chunk draws the same
        greedy = 1 if self.greedy_first or self.temperature <= 0 else 0
        sampled = n - greedy if self.temperature > 0 else 0
        out: list[list[str]] = [[] for _ in docs]
        for count, temperature in [(greedy, 0.0), (sampled, self.temperature)]:
            if count:
                texts = self.backend.generate(chats, self.max_tokens, temperature=temperature, top_p=self.top_p,
                                              n=count, seed=chunk_seed, stop=self.stop or None,
                                              batch_size=self.batch_size)
                for i, qs in enumerate(out):
                    qs += [parse_query(t) for t in texts[i * count : (i + 1) * count]]
        return [qs + qs[:1] * (n - len(qs)) for qs in out]  # temperature 0: n copies of the greedy query
