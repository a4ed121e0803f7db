"""A document collection held column-wise in Arrow: millions of passages without millions of Python objects."""

from __future__ import annotations

import contextlib
import hashlib
from typing import Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, require_file
from . import store
from .io import RE2_BAD_ID, check_id, check_text, id_problem, read_jsonl, read_tsv, remembered, stat_key

SCHEMA = pa.schema([("docid", pa.string()), ("title", pa.string()), ("text", pa.string())])
FINGERPRINT_VERSION = 2  # bump when the hash or the loaders change what a file's fingerprint is


class Hasher:
    """The content fingerprint computed batch by batch (see ``content_fingerprint``)."""

    def __init__(self):
        self.documents = 0
        self.columns = {name: (hashlib.sha256(), hashlib.sha256()) for name in SCHEMA.names}

    def update(self, table: pa.Table | pa.RecordBatch) -> None:
        for name in SCHEMA.names:
            column = table[name]
            lengths, data = self.columns[name]
            for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
                if chunk.null_count:
                    chunk = chunk.fill_null("")
                width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
                offsets = np.frombuffer(chunk.buffers()[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
                lengths.update(np.diff(offsets).astype("<i8").tobytes())
                if len(chunk) and chunk.buffers()[2] is not None:
                    data.update(memoryview(chunk.buffers()[2])[int(offsets[0]) : int(offsets[-1])])
        self.documents += len(table)

    def hexdigest(self) -> str:
        h = hashlib.sha256(f"irdistill-corpus-v{FINGERPRINT_VERSION}\n{self.documents}\n".encode())
        for name, (lengths, data) in self.columns.items():
            h.update(name.encode() + lengths.digest() + data.digest())
        return h.hexdigest()[:16]


def content_fingerprint(table: pa.Table) -> str:
    """SHA-256 of every document's id, title and text, in row order (16 hex digits).

    Each column is hashed as its value lengths and its UTF-8 bytes, read straight from the Arrow buffers, so hashing
    runs in C at about 1 GB/s and does not depend on how the table is chunked."""
    hasher = Hasher()
    hasher.update(table)
    return hasher.hexdigest()


class Corpus:
    """Documents as an Arrow table with columns ``docid``, ``title``, ``text``.

    ``corpus.texts(ids)`` joins title and text the way BEIR models expect. Ids are looked up by a binary search over
    the ids sorted once (no Python dict of every id). A corpus read from a large file is kept in an on-disk store
    (``store.py``) and memory-mapped: it is never held as Python strings, nor all in memory at once.
    """

    def __init__(self, table: pa.Table, source: str = "<memory>"):
        table = table.select(SCHEMA.names).cast(SCHEMA)
        for name in ("title", "text"):  # a missing title or text is an empty one
            if table[name].null_count:
                table = table.set_column(table.schema.get_field_index(name), name, pc.fill_null(table[name], ""))
        self.table = table.combine_chunks()
        self.source = source
        self._fingerprint: str | None = None
        self._store: str | None = None  # the store folder this corpus is mapped from
        self._ids: pa.Array | None = None
        self._index: store.IdIndex | None = None
        if len(self.table) == 0:
            raise InputError("the corpus is empty", source)

    @classmethod
    def _mapped(cls, found: store.Store, source: str) -> "Corpus":
        corpus = cls.__new__(cls)
        corpus.table, corpus.source, corpus._store = found.docs, source, found.folder
        corpus._fingerprint = found.meta["fingerprint"]
        corpus._ids = found.ids["docid"].combine_chunks()
        corpus._index = store.IdIndex(found.ids["sorted"].combine_chunks(), found.ids["row"].to_numpy())
        return corpus

    def __getstate__(self):  # a mapped corpus pickles as its store folder (DataLoader workers, DDP)
        if self._store is None:
            return self.__dict__
        return {"source": self.source, "_store": self._store, "_fingerprint": self._fingerprint}

    def __setstate__(self, state):
        if "table" in state:
            self.__dict__.update(state)
            return
        found = store.open_store(state["_store"])
        if found is None or found.meta["fingerprint"] != state["_fingerprint"]:
            raise InputError("the corpus store changed or was removed", state["_store"])
        self.__dict__.update(Corpus._mapped(found, state["source"]).__dict__)

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[tuple], source: str = "<memory>", batch: int = 100_000,
                     numbered: bool = False, keep: tuple[list[str], dict] | None = None) -> "Corpus":
        """Build from ``(docid, title, text)`` tuples, ``batch`` rows at a time; ``numbered``: the tuples are
        ``(line, docid, title, text)`` and errors name the line. Ids must be unique, non-empty, without whitespace.

        ``keep``: ``(places, key)``: once the parsed text passes ``store.min_bytes()``, the rest streams to a store in
        the first writable of ``places`` (see ``store.places``), kept under ``key``, and the corpus is mapped from it."""
        held, ids, lines, size = [], [], [], 0
        with contextlib.ExitStack() as stack:
            writer = None
            for part, part_lines in cls._record_batches(records, source, batch, numbered):
                ids.append(part.column(0))
                lines.append(part_lines)
                if writer is not None:
                    writer.write(part)
                    continue
                held.append(part)
                size += part.nbytes
                if keep is not None and size >= store.min_bytes():
                    writer = store.Writer.open(stack, keep[0], keep[1], SCHEMA, Hasher())
                    if writer is not None:
                        for part in held:
                            writer.write(part)
                        held = []
            numbers = pa.chunked_array(lines, pa.int64()).combine_chunks() if numbered else None
            if writer is None:
                corpus = cls(pa.Table.from_batches(held, SCHEMA), source)
                _check_ids(corpus.ids, source, numbers)
                return corpus
            all_ids = pa.chunked_array(ids, pa.string()).combine_chunks()
            _check_ids(all_ids, source, numbers)
            writer.finish(all_ids)
        return cls._mapped(store.open_store(writer.folder, keep[1]), source)

    @classmethod
    def _record_batches(cls, records, source, batch, numbered) -> Iterator[tuple[pa.RecordBatch, pa.Array | None]]:
        cols, lines = ([], [], []), []

        def flush():
            try:
                arrays = [pa.array(c, pa.string()) for c in cols]
            except (UnicodeEncodeError, pa.ArrowException):
                cls._find_bad_record(cols, lines, source)
                raise
            arrays[1:] = [pc.fill_null(a, "") if a.null_count else a for a in arrays[1:]]
            return pa.record_batch(arrays, schema=SCHEMA), pa.array(lines, pa.int64()) if numbered else None

        for rec in records:
            if numbered:
                lines.append(rec[0])
                rec = rec[1:]
            for col, value in zip(cols, rec):
                col.append(value)
            if len(cols[0]) >= batch:
                yield flush()
                cols, lines = ([], [], []), []
        if cols[0]:
            yield flush()

    @staticmethod
    def _find_bad_record(cols, lines, source) -> None:
        for i in range(len(cols[0])):
            line = lines[i] if lines else None
            where = "" if lines else f" (document {i + 1})"
            for what, col in zip(("document id", "title", "text"), cols):
                if not isinstance(col[i], str):
                    raise InputError(f"{what}{where} must be a string, not {type(col[i]).__name__}", source, line)
                check_text(col[i], what + where, source, line)

    @classmethod
    def _from_file(cls, path: str, records) -> "Corpus":
        """Parse ``records`` of the file at ``path``, or map the store kept of it while the file is unchanged."""
        key = {**stat_key(path), "version": FINGERPRINT_VERSION}
        places = store.places(path, beside=path)
        found = store.find_store(places, key)
        if found is not None:
            return cls._mapped(found, path)
        corpus = cls.from_records(records, path, numbered=True, keep=(places, key))
        if corpus._store is None:
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
        """The document ids in row order (one Arrow array; mapped from the store when there is one)."""
        if self._ids is None:
            column = self.table["docid"]
            self._ids = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        return self._ids

    def lookup(self, docids: Sequence[str] | pa.Array) -> np.ndarray:
        """The row of each id (-1 where unknown), by binary search over the sorted ids (built on first use)."""
        if self._index is None:
            self._index = store.IdIndex.build(self.ids)
        keys = docids if isinstance(docids, pa.Array) else pa.array(list(docids), pa.string())
        return self._index.find(keys)

    def contains(self, docids: Sequence[str] | pa.Array) -> list[bool]:
        return (self.lookup(docids) >= 0).tolist()

    def rows(self, docids: Sequence[str]) -> list[int]:
        """Row numbers of ``docids``; raises KeyError naming the first unknown id."""
        return self._rows(docids).tolist()

    def _rows(self, docids) -> np.ndarray:
        docids = docids if isinstance(docids, pa.Array) else pa.array(list(docids), pa.string())
        rows = self.lookup(docids)
        if len(rows) and rows.min() < 0:
            raise KeyError(f"unknown document id {docids[int(np.argmin(rows))].as_py()!r} in {self.source}")
        return rows

    def texts(self, docids: Sequence[str] | None = None, start: int = 0, stop: int | None = None) -> list[str]:
        """``title + " " + text`` (stripped) of the given ids, or of rows ``start:stop``."""
        if docids is not None:
            part = store.take(self.table, self._rows(docids))
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
        reuses the fingerprint kept beside it (or in its store) while the file's size and modification time are
        unchanged."""
        if self._fingerprint is None:
            self._fingerprint = content_fingerprint(self.table)
        return self._fingerprint


def _check_ids(ids: pa.Array, source: str, lines: pa.Array | None = None) -> None:
    """InputError naming the line (or document number) of the first empty, whitespace-holding or repeated id."""

    def where(row: int) -> tuple[int | None, str]:
        return (lines[row].as_py(), "") if lines is not None else (None, f" (document {row + 1})")

    empty = pc.fill_null(pc.equal(pc.binary_length(ids), 0), True)
    if pc.any(empty).as_py():
        line, doc = where(pc.index(empty, True).as_py())
        raise InputError(f"empty document id{doc}", source, line)
    spaced = pc.match_substring_regex(ids, RE2_BAD_ID)
    if pc.any(spaced).as_py():
        row = pc.index(spaced, True).as_py()
        line, doc = where(row)
        value = ids[row].as_py()
        raise InputError(f"document id {value!r}{doc} {id_problem(value)} (TREC files cannot hold it)", source, line)
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        value = dup[0]["values"].as_py()
        first, second = np.flatnonzero(pc.equal(ids, value).to_numpy(zero_copy_only=False))[:2]
        line, doc = where(int(second))
        was = f"line {lines[int(first)].as_py()}" if lines is not None else f"document {int(first) + 1}"
        raise InputError(f"duplicate document id {value!r}{doc} (first on {was})", source, line)
