"""A document collection held column-wise in Arrow: millions of passages without millions of Python objects."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, require_file
from .io import RE2_BAD_ID, check_id, check_text, id_problem, read_jsonl, read_tsv, remembered, stat_key

SCHEMA = pa.schema([("docid", pa.string()), ("title", pa.string()), ("text", pa.string())])
FINGERPRINT_VERSION = 2  # bump when the hash or the loaders change what a file's fingerprint is


def content_fingerprint(table: pa.Table) -> str:
    """SHA-256 of every document's id, title and text, in row order (16 hex digits).

    Each column is hashed as its value lengths and its UTF-8 bytes, read straight from the Arrow buffers, so hashing
    runs in C at about 1 GB/s and does not depend on how the table is chunked."""
    h = hashlib.sha256(f"irdistill-corpus-v{FINGERPRINT_VERSION}\n{len(table)}\n".encode())
    for name in SCHEMA.names:
        lengths, data = hashlib.sha256(), hashlib.sha256()
        for chunk in table[name].chunks:
            if chunk.null_count:
                chunk = chunk.fill_null("")
            width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
            offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
            lengths.update(np.diff(offsets).astype("<i8").tobytes())
            if len(chunk) and chunk.buffers()[2] is not None:
                data.update(memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        h.update(name.encode() + lengths.digest() + data.digest())
    return h.hexdigest()[:16]


class Corpus:
    """Documents as an Arrow table with columns ``docid``, ``title``, ``text``.

    ``corpus.texts(ids)`` joins title and text the way BEIR models expect; lookups by id build a hash map on first use.
    """

    def __init__(self, table: pa.Table, source: str = "<memory>"):
        table = table.select(SCHEMA.names).cast(SCHEMA)
        for name in ("title", "text"):  # a missing title or text is an empty one
            if table[name].null_count:
                table = table.set_column(table.schema.get_field_index(name), name, pc.fill_null(table[name], ""))
        self.table = table.combine_chunks()
        self.source = source
        self._rows: dict[str, int] | None = None
        self._fingerprint: str | None = None
        if len(self.table) == 0:
            raise InputError("the corpus is empty", source)

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[tuple], source: str = "<memory>", batch: int = 100_000,
                     numbered: bool = False) -> "Corpus":
        """Build from ``(docid, title, text)`` tuples, ``batch`` rows at a time; ``numbered``: the tuples are
        ``(line, docid, title, text)`` and errors name the line. Ids must be unique, non-empty, without whitespace."""
        batches, cols, lines, line_batches = [], ([], [], []), [], []

        def flush():
            try:
                arrays = [pa.array(c, pa.string()) for c in cols]
            except (UnicodeEncodeError, pa.ArrowException):
                cls._find_bad_record(cols, lines, source)
                raise
            batches.append(pa.record_batch(arrays, schema=SCHEMA))
            line_batches.append(pa.array(lines, pa.int64()) if numbered else None)

        for rec in records:
            if numbered:
                lines.append(rec[0])
                rec = rec[1:]
            for col, value in zip(cols, rec):
                col.append(value)
            if len(cols[0]) >= batch:
                flush()
                cols, lines = ([], [], []), []
        if cols[0] or not batches:
            flush()
        corpus = cls(pa.Table.from_batches(batches), source)
        corpus._check_ids(pa.chunked_array(line_batches, pa.int64()).combine_chunks() if numbered else None)
        return corpus

    @staticmethod
    def _find_bad_record(cols, lines, source) -> None:
        for i in range(len(cols[0])):
            line = lines[i] if lines else None
            where = "" if lines else f" (document {i + 1})"
            for what, col in zip(("document id", "title", "text"), cols):
                if not isinstance(col[i], str):
                    raise InputError(f"{what}{where} must be a string, not {type(col[i]).__name__}", source, line)
                check_text(col[i], what + where, source, line)

    def _check_ids(self, lines: pa.Array | None = None) -> None:
        """InputError naming the line (or document number) of the first empty, whitespace-holding or repeated id."""
        ids = self.ids

        def where(row: int) -> tuple[int | None, str]:
            return (lines[row].as_py(), "") if lines is not None else (None, f" (document {row + 1})")

        empty = pc.fill_null(pc.equal(pc.binary_length(ids), 0), True)
        if pc.any(empty).as_py():
            line, doc = where(pc.index(empty, True).as_py())
            raise InputError(f"empty document id{doc}", self.source, line)
        spaced = pc.match_substring_regex(ids, RE2_BAD_ID)
        if pc.any(spaced).as_py():
            row = pc.index(spaced, True).as_py()
            line, doc = where(row)
            value = ids[row].as_py()
            raise InputError(f"document id {value!r}{doc} {id_problem(value)} (TREC files cannot hold it)", self.source, line)
        counts = pc.value_counts(ids)
        dup = counts.filter(pc.greater(counts.field("counts"), 1))
        if len(dup):
            value = dup[0]["values"].as_py()
            first, second = np.flatnonzero(pc.equal(ids, value).to_numpy(zero_copy_only=False))[:2]
            line, doc = where(int(second))
            was = f"line {lines[int(first)].as_py()}" if lines is not None else f"document {int(first) + 1}"
            raise InputError(f"duplicate document id {value!r}{doc} (first on {was})", self.source, line)

    def check_unique(self) -> None:
        """InputError if an id is empty, repeated or holds whitespace."""
        self._check_ids()

    @classmethod
    def _from_file(cls, path: str, records) -> "Corpus":
        key = {**stat_key(path), "version": FINGERPRINT_VERSION}
        corpus = cls.from_records(records, path, numbered=True)
        corpus._fingerprint = remembered(path, {**key, "documents": len(corpus)},
                                         lambda: content_fingerprint(corpus.table))
        return corpus

    @classmethod
    def from_jsonl(cls, path) -> "Corpus":
        """A BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``). Empty documents are kept (real collections have them)."""
        path = require_file(path)

        def records():
            for n, rec in read_jsonl(path, required=("_id",)):
                docid = check_id(rec["_id"], "document id", path, n)
                title, text = rec.get("title") or "", rec.get("text") or ""
                if not isinstance(title, str) or not isinstance(text, str):
                    raise InputError("title and text must be strings", path, n)
                yield n, docid, title, text

        return cls._from_file(path, records())

    @classmethod
    def from_tsv(cls, path) -> "Corpus":
        """An MS MARCO ``collection.tsv`` (``pid<TAB>text``, no header)."""
        path = require_file(path)

        def records():
            for n, (docid, text) in read_tsv(path, 2):
                yield n, check_id(docid, "document id", path, n), "", text

        return cls._from_file(path, records())

    # access -------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> pa.Array:
        return self.table["docid"].chunk(0) if self.table["docid"].num_chunks == 1 else self.table["docid"].combine_chunks()

    def contains(self, docids: Sequence[str]) -> list[bool]:
        return pc.is_in(pa.array(list(docids), pa.string()), value_set=self.ids).to_pylist()

    def rows(self, docids: Sequence[str]) -> list[int]:
        """Row numbers of ``docids``; raises KeyError naming the first unknown id."""
        if self._rows is None:
            self._rows = {d: i for i, d in enumerate(self.ids.to_pylist())}
        try:
            return [self._rows[d] for d in docids]
        except KeyError as e:
            raise KeyError(f"unknown document id {e.args[0]!r} in {self.source}") from None

    def texts(self, docids: Sequence[str] | None = None, start: int = 0, stop: int | None = None) -> list[str]:
        """``title + " " + text`` (stripped) of the given ids, or of rows ``start:stop``."""
        if docids is not None:
            part = self.table.take(pa.array(self.rows(docids), pa.int64()))
        else:
            part = self.table.slice(start, (stop if stop is not None else len(self)) - start)
        joined = pc.utf8_trim_whitespace(pc.binary_join_element_wise(part["title"], part["text"], " "))
        return joined.to_pylist()

    def batches(self, size: int = 10_000) -> Iterator[tuple[int, list[str], list[str]]]:
        """Yield ``(start_row, docids, texts)`` in row order."""
        for start in range(0, len(self), size):
            stop = min(start + size, len(self))
            yield start, self.table["docid"].slice(start, stop - start).to_pylist(), self.texts(start=start, stop=stop)

    def fingerprint(self) -> str:
        """16 hex digits that change when any document's id, title or text changes (or the order of documents):
        indexes, embeddings and the score cache key on it. See ``content_fingerprint``; a corpus read from a file
        reuses the fingerprint kept beside it while the file's size and modification time are unchanged."""
        if self._fingerprint is None:
            self._fingerprint = content_fingerprint(self.table)
        return self._fingerprint
