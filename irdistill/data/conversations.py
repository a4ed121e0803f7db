"""Conversational collections: each turn of a conversation is a query with several texts (query views).

- ``raw``: the turn as the user said it ("What about its side effects?");
- ``conversation``: the turn, then the earlier turns newest first (and the last system response, where the
  collection gives one), joined by `` [SEP] ``: what a conversational retriever reads (DiSCo's student);
- ``manual``: a person's self-contained rewrite; ``automatic``: the organisers' automatic rewrite (where given).

A dataset's queries are the raw turns; its ``query_views`` hold the others (``Dataset.query_texts``), and an LLM
adds a rewrite view (``irdistill.queries.rewrite``). Loaded from ir_datasets' TREC CAsT (2019-2022), by the
fields of their query records, and from BEIR folders whose ``queries.<view>.jsonl`` files hold views.

>>> turns = [Turn("1_1", "1", "Tell me about the Bronze Age collapse.", {}),
...          Turn("1_2", "1", "What was its impact?", {"manual": "What was the Bronze Age collapse's impact?"})]
>>> views = query_views(turns)
>>> views["conversation"]["1_2"]
'What was its impact? [SEP] Tell me about the Bronze Age collapse.'
>>> sorted(views["manual"])  # a view holds the turns that have that text
['1_2']
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEP = " [SEP] "
REWRITES = {"manual": "manual_rewritten_utterance", "automatic": "automatic_rewritten_utterance"}


@dataclass
class Turn:
    qid: str
    topic: str
    utterance: str
    rewrites: dict[str, str] = field(default_factory=dict)  # view name -> text
    parent: str | None = None     # the turn it follows (default: the topic's previous turn)
    response: str | None = None   # the system's answer to this turn, where the collection gives it
    user: bool = True             # False: a system turn (CAsT 2022), context but no query


def query_views(turns: list[Turn], history: int | None = None) -> dict[str, dict[str, str]]:
    """``{"raw", "conversation", <rewrite names>}`` views (qid -> text) of the user turns. ``history``: at most that
    many earlier turns in a conversation text (default: all)."""
    by_id = {t.qid: t for t in turns}
    previous, last = {}, {}
    for t in turns:  # in order: a turn's parent defaults to the topic's turn before it
        previous[t.qid] = t.parent if t.parent is not None else last.get(t.topic)
        last[t.topic] = t.qid
    views: dict[str, dict[str, str]] = {"raw": {}, "conversation": {}}
    for t in turns:
        if not t.user:
            continue
        views["raw"][t.qid] = t.utterance
        context, response, p = [], None, previous[t.qid]
        while p is not None and p in by_id and (history is None or len(context) < history):
            before = by_id[p]
            response = response if response is not None or before.response is None else before.response
            if before.user:
                context.append(before.utterance)
            elif response is None:
                response = before.utterance
            p = previous[p]
        views["conversation"][t.qid] = SEP.join([t.utterance, *context] + ([response] if response else []))
        for name, text in t.rewrites.items():
            if text:
                views.setdefault(name, {})[t.qid] = text
    return views


def turns_from_records(records) -> list[Turn]:
    """Turns from ir_datasets' TREC CAsT query records (``Cast2019Query`` .. ``Cast2022Query``), by their fields."""
    out = []
    for r in records:
        rewrites = {name: getattr(r, f) for name, f in REWRITES.items() if getattr(r, f, None)}
        participant = getattr(r, "participant", "User") or "User"
        out.append(Turn(r.query_id, str(r.topic_number), r.raw_utterance or "", rewrites,
                        getattr(r, "parent_id", None) or None, getattr(r, "response", None) or None,
                        participant.lower() == "user"))
    return out


def is_conversational(record) -> bool:
    return hasattr(record, "raw_utterance") and hasattr(record, "topic_number")
