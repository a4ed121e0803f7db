"""Conversational query rewriting with an LLM: each turn rewritten, from the conversation before it, into a
self-contained query, kept as a query view (DiSCo's teachers read such rewrites; several LLMs give several views).

Any chat backend of ``irdistill.models.llm`` writes them (transformers in-process, GGUF included, or an
OpenAI-compatible server). Each rewrite is cached by content (the backend, the prompt's version, the input text) in
a JSONL file beside the output, so a killed run resumes and a rerun asks the LLM nothing; the view is written
atomically as a BEIR ``queries.jsonl`` (``_id``, ``text``), which ``--query-view-file NAME=FILE`` or a BEIR
folder's ``queries.<name>.jsonl`` attaches.

>>> chat("What was its impact? [SEP] Tell me about the Bronze Age collapse.")[-1]["content"].splitlines()[-2:]
['Question: What was its impact?', 'Rewritten question:']
"""

from __future__ import annotations

import hashlib
import json
import os

from ..data.conversations import SEP
from ..data.io import atomic_path
from ..errors import InputError
from ..progress import bar

PROMPT_VERSION = 2
SYSTEM = ("You rewrite the last question of a conversation so that it can be understood without the conversation: "
          "replace pronouns and fill in what it leaves out from the earlier turns. Answer with the rewritten "
          "question only, on one line.")


EXAMPLE = ("What is throat cancer? [SEP] Is it treatable?", "Is throat cancer treatable?")  # shown first


def chat(conversation: str) -> list[dict]:
    """The prompt for one turn, from its conversation text (the turn, then earlier turns newest first), after one
    worked example (small models copy the example's form instead of answering the question)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _ask(EXAMPLE[0])},
            {"role": "assistant", "content": EXAMPLE[1]}, {"role": "user", "content": _ask(conversation)}]


def _ask(conversation: str) -> str:
    turn, *earlier = conversation.split(SEP)
    context = "\n".join(f"- {t}" for t in reversed(earlier)) or "(none)"
    return f"Earlier turns, oldest first:\n{context}\n\nQuestion: {turn}\nRewritten question:"


def clean(answer: str, fallback: str) -> str:
    """The first line of an answer, without a label or quotes; ``fallback`` (the turn itself) when empty."""
    line = next((l.strip() for l in answer.splitlines() if l.strip()), "")
    for label in ("Rewritten question:", "Rewrite:", "Question:"):
        if line.lower().startswith(label.lower()):
            line = line[len(label):].strip()
    return line.strip("\"'` ") or fallback


def rewrite_queries(queries: dict[str, str], backend, output: str, max_tokens: int = 64, batch_size: int = 8,
                    progress: bool = True) -> dict[str, str]:
    """Rewrite each of ``queries`` (qid -> its conversation text) with ``backend`` (greedy) and write the view to
    ``output`` (a queries.jsonl); returns it. Answers are cached in ``<output>.cache.jsonl`` by content."""
    settings = json.dumps({"backend": backend.describe(), "prompt": PROMPT_VERSION, "max_tokens": max_tokens},
                          sort_keys=True)
    key = lambda text: hashlib.sha1(f"{settings}\0{text}".encode()).hexdigest()
    cache_path = output + ".cache.jsonl"
    done = _read_cache(cache_path)
    _cut_partial_line(cache_path)
    keys = {q: key(text) for q, text in queries.items()}
    todo = [q for q in queries if keys[q] not in done]
    with bar(total=len(todo), desc="rewriting", unit="query", show=progress) as pbar, \
            open(cache_path, "a", encoding="utf-8") as cache:
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            answers = backend.generate([chat(queries[q]) for q in batch], max_tokens, stop=["\n\n"])
            for q, answer in zip(batch, answers):
                done[keys[q]] = clean(answer, queries[q].split(SEP)[0])
                cache.write(json.dumps({"key": keys[q], "text": done[keys[q]]}) + "\n")
            cache.flush()
            pbar.update(len(batch))
    view = {q: done[keys[q]] for q in queries}
    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for q, text in view.items():
            f.write(json.dumps({"_id": q, "text": text}) + "\n")
    return view


def _cut_partial_line(path: str) -> None:
    """Drop a last line that a killed run left without its newline (so the next answer starts a line)."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def _read_cache(path: str) -> dict[str, str]:
    """The cached answers; a line cut short by a killed run is skipped (it is asked again)."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                out[row["key"]] = row["text"]
            except (ValueError, KeyError, TypeError):
                if line.endswith("\n"):
                    raise InputError("not a rewrite cache line", path, n) from None
    return out
