"""Search results for people: rank, score, id, title and a snippet, aligned; TREC or JSON lines for programs.

An index remembers the corpus file it was built from (``corpus.json`` beside ``meta.json``), so hits show their
titles and text without naming the dataset again; a moved or changed file just leaves them out."""

from __future__ import annotations

import json
import os
import shutil

from ..data.io import atomic_path

SOURCE = "corpus.json"
FORMATS = ("table", "trec", "json")


def remember_corpus(path: str, corpus) -> None:
    """Note ``corpus``'s file (and content fingerprint) in the index folder ``path``."""
    source = getattr(corpus, "source", None)
    if not source or not os.path.isfile(source):
        return
    with atomic_path(os.path.join(path, SOURCE)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump({"source": os.path.abspath(source), "fingerprint": corpus.fingerprint()}, f)


def remembered_corpus(path: str):
    """The corpus an index was built from, if its file is still there with the same content; else None."""
    try:
        with open(os.path.join(path, SOURCE), encoding="utf-8") as f:
            noted = json.load(f)
        source = noted["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(source, str) or not os.path.isfile(source):
        return None
    from ..data.corpus import Corpus
    from ..errors import InputError

    try:
        corpus = Corpus.from_jsonl(source) if ".jsonl" in source else Corpus.from_tsv(source)
    except InputError:
        return None
    return corpus if corpus.fingerprint() == noted.get("fingerprint") else None


def snippet(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters at a word.

    >>> snippet("A  long\\ntext that goes on", 14)
    'A long text…'
    """
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1].rsplit(" ", 1)[0] if " " in text[: width - 1] else text[: width - 1]
    return cut + "…"


def hits(run, corpus=None) -> list[dict]:
    """The run's rows as dicts (qid, rank, score, docid, and title and text when ``corpus`` has them)."""
    rows = [{"qid": q, "rank": int(r), "score": float(s), "docid": d}
            for q, d, r, s in zip(run["qid"], run["docid"], run["rank"], run["score"])]
    if corpus is not None and rows:
        import pyarrow.compute as pc

        from ..data import store

        ids = list(dict.fromkeys(r["docid"] for r in rows))
        at = corpus.lookup(ids)  # -1: not in the corpus
        found = [d for d, i in zip(ids, at) if i >= 0]
        if found:
            part = store.take(corpus.table, at[at >= 0])
            fields = dict(zip(found, zip(part["title"].to_pylist(), pc.utf8_trim_whitespace(part["text"]).to_pylist())))
            for r in rows:
                if r["docid"] in fields:
                    r["title"], r["text"] = fields[r["docid"]]
    return rows


def render(rows: list[dict], fmt: str, queries: dict[str, str], width: int | None = None) -> str:
    """``rows`` as an aligned table (a heading per query when there are several), TREC lines or JSON lines."""
    if fmt == "trec":
        return "".join(f"{r['qid']} Q0 {r['docid']} {r['rank']} {r['score']:.6g} irdistill\n" for r in rows)
    if fmt == "json":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    width = width or shutil.get_terminal_size((100, 24)).columns
    out, many = [], len(queries) > 1
    for qid in queries:
        mine = [r for r in rows if r["qid"] == qid]
        if many:
            out.append(f"{qid}: {queries[qid]}")
        if not mine:
            out.append("  (no hits)")
            continue
        idw = max(4, *(len(r["docid"]) for r in mine))
        scw = max(5, *(len(f"{r['score']:.4f}") for r in mine))
        out.append(f"{'rank':>4}  {'score':>{scw}}  {'id':<{idw}}  title / text")
        for r in mine:
            head = f"{r['rank']:>4}  {r['score']:>{scw}.4f}  {r['docid']:<{idw}}  "
            body = " · ".join(x for x in (r.get("title"), r.get("text")) if x)
            out.append(head + snippet(body, max(20, width - len(head))) if body else head.rstrip())
        if many:
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
