"""A document collection held column-wise in Arrow: millions of passages without millions of Python objects."""

from __future__ import annotations

import hashlib
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputError, require_file
from .io import read_jsonl, read_tsv

SCHEMA = pa.schema([("docid", pa.string()), ("title", pa.string()), ("text", pa.string())])


class Corpus:
    """Documents as an Arrow table with columns ``docid``, ``title``, ``text``.

    ``corpus.texts(ids)`` joins title and text the way BEIR models expect; lookups by id build a hash map on first use.
    """

    def __init__(self, table: pa.Table, source: str = "<memory>"):
        self.table = table.select(SCHEMA.names).cast(SCHEMA).combine_chunks()
        self.source = source
        self._rows: dict[str, int] | None = None
        self._fingerprint: str | None = None
        if len(self.table) == 0:
            raise InputError("the corpus is empty", source)

    # construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, str]], source: str = "<memory>", batch: int = 100_000):
        """Build from ``(docid, title, text)`` tuples, ``batch`` rows at a time."""
        batches, cols = [], ([], [], [])
        for rec in records:
            for col, value in zip(cols, rec):
                col.append(value)
            if len(cols[0]) >= batch:
                batches.append(pa.record_batch(list(map(pa.array, cols)), schema=SCHEMA))
                cols = ([], [], [])
        if cols[0] or not batches:
            batches.append(pa.record_batch([pa.array(c, pa.string()) for c in cols], schema=SCHEMA))
        corpus = cls(pa.Table.from_batches(batches), source)
        corpus.check_unique()
        return corpus

    @classmethod
    def from_jsonl(cls, path) -> "Corpus":
        """A BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``). Empty documents are kept (real collections have them)."""
        path = require_file(path)

        def records():
            for n, rec in read_jsonl(path, required=("_id",)):
                docid, title, text = str(rec["_id"]).strip(), rec.get("title") or "", rec.get("text") or ""
                if not docid:
                    raise InputError("empty _id", path, n)
                if not isinstance(title, str) or not isinstance(text, str):
                    raise InputError("title and text must be strings", path, n)
                yield docid, title, text

        return cls.from_records(records(), path)

    @classmethod
    def from_tsv(cls, path) -> "Corpus":
        """An MS MARCO ``collection.tsv`` (``pid<TAB>text``, no header)."""
        path = require_file(path)

        def records():
            for n, (docid, text) in read_tsv(path, 2):
                if not docid.strip():
                    raise InputError("empty document id", path, n)
                yield docid.strip(), "", text

        return cls.from_records(records(), path)

    def check_unique(self) -> None:
        counts = pc.value_counts(self.table["docid"])
        dup = counts.filter(pc.greater(counts.field("counts"), 1))
        if len(dup):
            raise InputError(f"duplicate document id {dup[0]['values'].as_py()!r}", self.source)

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
        """A short hash of the document ids (in order): indexes and the score cache key on it."""
        if self._fingerprint is None:
            h = hashlib.sha1(str(len(self)).encode())
            for chunk in self.table["docid"].chunks:
                h.update(pc.binary_join(pa.array([chunk.to_pylist()]), "\n")[0].as_py().encode())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint
