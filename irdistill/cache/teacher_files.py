"""Teacher files people already have, streamed into the score cache.

========================  ============================================================================================
format                    layout
========================  ============================================================================================
``margin-mse``            Hofstätter et al.'s teacher TSV: ``pos_score neg_score qid pos_pid neg_pid`` (about 40M lines)
``st-scores``             sentence-transformers' MS MARCO cross-encoder scores: a (gzipped) pickle ``scores[qid][pid]``
``st-hard-negatives``     sentence-transformers' hard negatives with inline scores, jsonl(.gz):
                          ``{"qid", "pos": [{"pid", "ce-score"}], "neg": {system: [{"pid", "ce-score"}]}}``
``run``                   a TREC run, or Parquet with ``qid``/``query_id``, ``docid``/``docno``/``doc_id``, ``score``
``colbert``               ColBERT-style jsonl, a query a line: ``[qid, [pid, score], [pid, score], ...]``
``pylate``                Parquet with ``query_id``, ``document_ids`` (list), ``scores`` (list): PyLate's sets
========================  ============================================================================================

An import reads the file once and spills its pairs to bucket files, a bucket per share of the queries; each bucket is
then committed as one part of the cache. Memory holds one block of the file or one bucket, never the whole file. A pair
listed twice must have one score (a second one is refused at its line). The teacher id is ``<name>-<12 hex>``, a hash of
the file's content, the format and the declared scale, so the same file imported again lands in the same place and an
edited file in another. A killed import resumes: buckets already committed are skipped (``_import.json`` in the
teacher's folder says which).

The pickle is never unpickled: ``pickletools`` walks its opcodes, and only those that build dicts, ints, strings and
floats are accepted (anything else, such as a class or a function to call, is refused with one line).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickletools
import shutil
import zlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..data.io import RE2_BAD_ID, atomic_path, file_lock, id_problem, read_jsonl, read_lines, read_tsv, remembered, stat_key
from ..errors import InputError, require_file, safe_name
from ..progress import bar
from .scores import SCHEMA, ScoreCache

SPILL = SCHEMA.append(pa.field("line", pa.int64()))  # a pair, and the line of the file it came from (null: none)

SCALES = ("logit", "probability", "cosine", "margin", "rank", "unknown")
BLOCK_ROWS = 500_000  # pairs a reader hands over at a time
BUCKET_PAIRS = 1_000_000  # about this many pairs per bucket (and so per part of the cache)
PROGRESS = "_import.json"


@dataclass
class Imported:
    key: str  # the teacher id in the cache
    pairs: int  # distinct (qid, docid) pairs the file holds
    queries: int


# readers: each yields (table of qid, docid, score, line numbers or None) ----------------------------------------------
def _table(qids, docids, scores) -> pa.Table:
    return pa.table({"qid": pa.array(qids, pa.string()), "docid": pa.array(docids, pa.string()),
                     "score": pa.array(np.asarray(scores, dtype=np.float64), pa.float64())})


def _id(value, what: str, path: str, line: int | None) -> str:
    """An id from a JSON or pickle value: a string or an int (MS MARCO's ids are ints in these files)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"{what} must be a string or an integer, not {type(value).__name__}", path, line)
    return str(value)


def _score(value, path: str, line: int | None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"a score must be a number, not {type(value).__name__}", path, line)
    return float(value)


def _batched(pairs) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """``(qid, docid, score, line)`` tuples as tables of ``BLOCK_ROWS`` pairs and their lines (None: no lines)."""
    block = []
    for pair in pairs:
        block.append(pair)
        if len(block) >= BLOCK_ROWS:
            yield _block(block)
            block = []
    if block:
        yield _block(block)


def _block(block: list[tuple]) -> tuple[pa.Table, np.ndarray | None]:
    q, d, s, n = zip(*block)
    return _table(q, d, s), None if n[0] is None else np.asarray(n)


def read_margin_mse(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """``pos_score neg_score qid pos_pid neg_pid``: each line gives two pairs, (qid, pos) and (qid, neg).

    pyarrow's CSV reader reads it a block at a time; from a block it cannot parse (a blank line, a word where a score
    belongs, bytes that are not UTF-8) on, the line reader takes over, which names the line of the problem."""
    import pyarrow.csv as csv

    names = ["pos", "neg", "qid", "p", "m"]
    done = 0  # lines read by pyarrow (no blank line among them: it stops at one)
    try:
        reader = csv.open_csv(  # 4 MiB blocks: 0.6 GiB peak at 40M lines (16 MiB blocks: 1.03 GiB)
            path, read_options=csv.ReadOptions(column_names=names, block_size=4 << 20),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False),
            convert_options=csv.ConvertOptions(column_types={"pos": pa.float64(), "neg": pa.float64(), "qid": pa.string(),
                                                             "p": pa.string(), "m": pa.string()}))
        for batch in reader:
            if any(batch.column(i).null_count for i in range(5)):  # a blank line: the line reader skips it
                raise pa.ArrowInvalid("blank line")
            n = batch.num_rows
            lines = np.arange(done + 1, done + n + 1)
            yield pa.table({"qid": pa.concat_arrays([batch["qid"], batch["qid"]]),
                            "docid": pa.concat_arrays([batch["p"], batch["m"]]),
                            "score": pa.concat_arrays([batch["pos"], batch["neg"]])}), np.concatenate([lines, lines])
            done += n
    except (pa.ArrowInvalid, UnicodeDecodeError):
        yield from _margin_mse_lines(path, done)


def _margin_mse_lines(path: str, skip: int) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    def pairs():
        for n, (pos, neg, qid, p, m) in read_tsv(path, 5):
            if n <= skip:
                continue
            try:
                ps, ns = float(pos), float(neg)
            except ValueError:
                raise InputError("scores must be numbers", path, n) from None
            yield qid, p, ps, n
            yield qid, m, ns, n

    return _batched(pairs())


def read_hard_negatives(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """sentence-transformers' hard-negatives jsonl with ``ce-score`` on every positive and negative."""
    def pairs():
        for n, rec in read_jsonl(path, ("qid", "pos", "neg")):
            qid = _id(rec["qid"], "qid", path, n)
            if not isinstance(rec["pos"], list) or not isinstance(rec["neg"], dict):
                raise InputError('expected "pos" as a list and "neg" as an object of lists', path, n)
            negatives = [x for system in rec["neg"].values() for x in (system if isinstance(system, list) else [system])]
            for item in rec["pos"] + negatives:
                if not isinstance(item, dict) or "ce-score" not in item or "pid" not in item:
                    raise InputError('this file has no scores (an entry without "pid" and "ce-score"): import the '
                                     "cross-encoder scores (format st-scores) instead", path, n)
                yield qid, _id(item["pid"], "pid", path, n), _score(item["ce-score"], path, n), n

    return _batched(pairs())


def read_colbert(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """ColBERT-style jsonl: ``[qid, [pid, score], ...]`` a line."""
    def pairs():
        for n, line in read_lines(path):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise InputError(f"malformed JSON ({str(e)[:120]})", path, n) from None
            if not isinstance(rec, list) or not rec:
                raise InputError("expected a JSON list [qid, [pid, score], ...]", path, n)
            qid = _id(rec[0], "qid", path, n)
            for item in rec[1:]:
                if not isinstance(item, list) or len(item) < 2:
                    raise InputError("expected [pid, score] pairs after the qid", path, n)
                yield qid, _id(item[0], "pid", path, n), _score(item[1], path, n), n

    return _batched(pairs())


def _parquet_column(names: list[str], choices: tuple[str, ...], path: str) -> str:
    found = [c for c in choices if c in names]
    if not found:
        raise InputError(f"no column {' or '.join(choices)} (columns: {', '.join(names)})", path)
    return found[0]


def _parquet(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"not a readable Parquet file ({str(e).splitlines()[0][:160]})", path) from None


def read_run_file(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """A TREC run (``qid Q0 docid rank score tag``) or a Parquet run (Rank-DistiLLM's ``qid, docno, score``)."""
    if not path.endswith(".parquet"):
        def pairs():
            for n, (qid, _, docid, _, score, _) in read_tsv(path, 6, sep=None):
                try:
                    yield qid, docid, float(score), n
                except ValueError:
                    raise InputError(f"score {score[:40]!r} is not a number", path, n) from None

        yield from _batched(pairs())
        return
    f = _parquet(path)
    names = f.schema_arrow.names
    cols = (_parquet_column(names, ("qid", "query_id"), path), _parquet_column(names, ("docid", "docno", "doc_id"), path),
            _parquet_column(names, ("score",), path))
    for batch in f.iter_batches(BLOCK_ROWS, columns=list(cols)):
        try:
            yield pa.table({"qid": pc.cast(batch.column(0), pa.string()), "docid": pc.cast(batch.column(1), pa.string()),
                            "score": pc.cast(batch.column(2), pa.float64())}), None
        except pa.ArrowException as e:
            raise InputError(f"cannot read the run's columns as ids and scores ({str(e).splitlines()[0][:160]})",
                             path) from None


def read_pylate(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """PyLate's Parquet: ``query_id``, ``document_ids`` (a list), ``scores`` (a list of the same length)."""
    f = _parquet(path)
    names = f.schema_arrow.names
    cols = [_parquet_column(names, (c,), path) for c in ("query_id", "document_ids", "scores")]
    row = 0
    for batch in f.iter_batches(max(1, BLOCK_ROWS // 100), columns=cols):
        qid, docs, scores = batch.column(0), batch.column(1), batch.column(2)
        if not (pa.types.is_list(docs.type) or pa.types.is_large_list(docs.type)) or \
                not (pa.types.is_list(scores.type) or pa.types.is_large_list(scores.type)):
            raise InputError("document_ids and scores must be list columns", path)
        unequal = pc.not_equal(pc.list_value_length(docs), pc.list_value_length(scores))
        if pc.any(pc.fill_null(unequal, True)).as_py():
            bad = pc.index(pc.fill_null(unequal, True), True).as_py()
            raise InputError(f"row {row + bad + 1}: document_ids and scores differ in length", path)
        try:
            yield pa.table({"qid": pc.cast(pc.take(qid, pc.list_parent_indices(docs)), pa.string()),
                            "docid": pc.cast(pc.list_flatten(docs), pa.string()),
                            "score": pc.cast(pc.list_flatten(scores), pa.float64())}), None
        except pa.ArrowException as e:
            raise InputError(f"cannot read the columns as ids and scores ({str(e).splitlines()[0][:160]})", path) from None
        row += batch.num_rows


_CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4",
             "PERSID", "BINPERSID"}
MEMO_STRINGS = 10_000_000  # strings kept for back-references; a pickle that refers back past them is refused
_ALLOWED_OPS = {"PROTO", "FRAME", "EMPTY_DICT", "MARK", "SETITEM", "SETITEMS", "MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT",
                "BINGET", "LONG_BINGET", "GET", "BININT", "BININT1", "BININT2", "LONG1", "INT", "LONG", "BINFLOAT", "FLOAT",
                "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STOP"}


def read_st_scores(path: str) -> Iterator[tuple[pa.Table, np.ndarray | None]]:
    """``scores[qid][pid] -> float`` as a pickle (gzipped when it ends in ``.gz``), walked opcode by opcode without
    unpickling: dicts, ints, strings and floats only. Yields the finished queries a block at a time."""
    return _batched(_pickled_pairs(path))


def _pickled_pairs(path: str):
    """Each query's pairs once its dict is complete (pickle sets a dict's items in batches of 1,000)."""
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    stack: list = []
    marks: list[int] = []
    memo: dict = {}
    memo_next, outer = 0, None

    def where(pos):
        return f"byte {pos} of the pickle"

    try:
        with opener(path, "rb") as f:
            for op, arg, pos in pickletools.genops(f):
                name = op.name
                if name in _CODE_OPS:
                    raise InputError(f"refused: the pickle holds {name} at {where(pos)}, not only dicts of ids and "
                                     "scores (it could run code when unpickled)", path)
                if name not in _ALLOWED_OPS:
                    raise InputError(f"unsupported pickle content ({name} at {where(pos)}): expected a dict "
                                     "scores[qid][pid] -> float, pickled with protocol 2 or later", path)
                if name in ("PROTO", "FRAME", "STOP"):
                    continue
                if name == "EMPTY_DICT":
                    stack.append({})
                    outer = stack[-1] if outer is None else outer
                elif name == "MARK":
                    marks.append(len(stack))
                elif name in ("SETITEM", "SETITEMS"):
                    start = len(stack) - 2 if name == "SETITEM" else (marks.pop() if marks else -1)
                    if start < 1 or not isinstance(stack[start - 1], dict) or (len(stack) - start) % 2:
                        raise InputError(f"not a dict of scores (at {where(pos)})", path)
                    target, items = stack[start - 1], stack[start:]
                    del stack[start:]
                    for k, v in zip(items[::2], items[1::2]):
                        if target is outer:
                            if not isinstance(v, dict):
                                raise InputError(f"scores[{k!r}] is not a dict (at {where(pos)})", path)
                            qid = _id(k, "qid", path, None)
                            yield from ((qid, pid, score, None) for pid, score in v.items())
                            v.clear()
                        else:
                            target[_id(k, "pid", path, None)] = _score(v, path, None)
                elif name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                    key = memo_next if name == "MEMOIZE" else arg
                    memo_next += name == "MEMOIZE"
                    if not isinstance(stack[-1], dict) and len(memo) < MEMO_STRINGS:  # a dict is never shared here
                        memo[key] = stack[-1]
                elif name in ("BINGET", "LONG_BINGET", "GET"):
                    if arg not in memo:
                        raise InputError(f"refused: the pickle shares an object (at {where(pos)})", path)
                    stack.append(memo[arg])
                else:  # a number or a string
                    stack.append(arg)
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zlib.error) as e:
        raise InputError(f"not a readable pickle of scores ({str(e)[:160] or type(e).__name__})", path) from None


FORMATS = {"margin-mse": read_margin_mse, "st-scores": read_st_scores, "st-hard-negatives": read_hard_negatives,
           "run": read_run_file, "colbert": read_colbert, "pylate": read_pylate}


# checks -----------------------------------------------------------------------------------------------------------
def _check_block(table: pa.Table, lines: np.ndarray | None, path: str, seen: int) -> pa.Table:
    """InputError naming the line (or row) of an empty or whitespace-holding id or a score that is not finite; returns
    the table with float32 scores."""
    def fail(i: int, message: str):
        row = int(i)
        if lines is not None:
            raise InputError(message, path, int(lines[row]))
        qid = table["qid"][row].as_py()
        raise InputError(f"pair {seen + row + 1} (query {qid!r}): {message}", path)

    for col, what in (("qid", "query id"), ("docid", "document id")):
        ids = table[col]
        bad = pc.fill_null(pc.or_kleene(pc.equal(pc.binary_length(ids), 0), pc.match_substring_regex(ids, RE2_BAD_ID)),
                           True)
        if pc.any(bad).as_py():
            i = pc.index(bad, True).as_py()
            value = table[col][i].as_py()
            fail(i, f"{what} {value!r} {id_problem(value) or 'is empty'} (TREC files cannot hold it)")
    score = table["score"].to_numpy(zero_copy_only=False)
    bad = ~(np.abs(score) <= float(np.finfo(np.float32).max))  # NaN, infinite or beyond float32
    if bad.any():
        fail(int(np.flatnonzero(bad)[0]), f"scores must be finite numbers (within float32), not {float(score[bad][0])}")
    line = pa.array(lines, pa.int64()) if lines is not None else pa.nulls(len(table), pa.int64())
    return table.set_column(2, "score", pc.cast(table["score"], pa.float32())).append_column("line", line)


# the import ---------------------------------------------------------------------------------------------------------
def file_hash(path: str) -> str:
    """SHA-1 of a file's bytes, remembered beside it (or in the user cache) while the file is unchanged."""
    def compute():
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        return h.hexdigest()

    return remembered(path, stat_key(path), compute, beside=False)


def teacher_key(path: str, fmt: str, name: str | None = None, scale: str = "unknown") -> str:
    """``<name>-<12 hex>``: the hash of the file's bytes, its format and declared scale."""
    digest = hashlib.sha1(json.dumps({"sha1": file_hash(path), "format": fmt, "scale": scale},
                                     sort_keys=True).encode()).hexdigest()[:12]
    return f"{safe_name(fmt if name is None else name, 'teacher id')}-{digest}"


def _buckets(path: str) -> int:
    size = os.path.getsize(path) * (4 if path.endswith(".gz") else 1)
    return max(1, min(256, math.ceil(size / (16 << 20))))


def _bucket_of(qids: pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    enc = pc.dictionary_encode(qids).combine_chunks() if isinstance(qids, pa.ChunkedArray) else pc.dictionary_encode(qids)
    per = np.fromiter((zlib.crc32(x.encode()) % n for x in enc.dictionary.to_pylist()), np.int64, len(enc.dictionary))
    return per[enc.indices.to_numpy(zero_copy_only=False)]


def _state(folder: str) -> dict:
    try:
        with open(os.path.join(folder, PROGRESS), encoding="utf-8") as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_state(folder: str, state: dict) -> None:
    with atomic_path(os.path.join(folder, PROGRESS)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f)


def import_teacher_file(cache: ScoreCache, path, fmt: str, name: str | None = None, scale: str = "unknown",
                        description: dict | None = None, progress: bool = True) -> Imported:
    """Import ``path`` (a file in ``fmt``, see ``FORMATS``) into ``cache``; returns its key and counts.

    ``scale`` says what the scores are (``SCALES``: logits, probabilities, cosine similarities, margins, ranks), kept in
    the teacher's description for the losses to check. Bad input is an InputError naming the file and line."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r} (choose from {', '.join(SCALES)})")
    path = require_file(path)
    key = teacher_key(path, fmt, name, scale)
    fresh = not os.path.exists(cache.folder)
    cache.register(key, {"kind": "imported", "name": name or fmt, "format": fmt, "file": os.path.abspath(path),
                         "sha1": file_hash(path), "scale": scale, "normalisation": None, **(description or {})})
    folder = cache._make_dir(key)
    try:
        with file_lock(os.path.join(folder, ".import.lock")):  # a second import of the same file waits, finds it done
            return _import(cache, key, folder, path, fmt, progress)
    except InputError:
        shutil.rmtree(os.path.join(folder, f".spill-{key}"), ignore_errors=True)
        cache.forget_if_empty(key)
        if fresh and not os.listdir(cache.folder):  # the cache this import made: gone with it
            os.rmdir(cache.folder)
        raise


def _import(cache: ScoreCache, key: str, folder: str, path: str, fmt: str, progress: bool) -> Imported:
    state = _state(folder)
    if state.get("done"):
        return Imported(key, state["pairs"], state["queries"])
    spill = os.path.join(folder, f".spill-{key}")
    n = _buckets(path)
    if state.get("spilled") != n or not os.path.isdir(spill):
        _spill(path, fmt, spill, n, progress)
        for i in range(n):  # every bucket checked before any is committed: a bad file leaves nothing in the cache
            table = _read_bucket(spill, i)
            if table is not None:
                _check_twice(table, path)
        state = {"spilled": n, "committed": []}
        _save_state(folder, state)
    pairs = queries = 0
    with bar(total=n, desc="importing", unit="bucket", show=progress) as b:
        for i in range(n):
            table = _read_bucket(spill, i)
            if table is not None:
                table = table.group_by(["qid", "docid"], use_threads=False).aggregate([("score", "first")])
                pairs += len(table)
                queries += len(pc.unique(table["qid"]))
                if i not in state["committed"]:
                    cache.commit(key, table["qid"].to_pylist(), table["docid"].to_pylist(),
                                 table["score_first"].to_numpy())
            if i not in state["committed"]:
                state["committed"].append(i)
                _save_state(folder, state)
            b.update(1)
    if not pairs:
        raise InputError("no lines with pairs in the file", path)
    _save_state(folder, {"done": True, "pairs": pairs, "queries": queries})
    shutil.rmtree(spill, ignore_errors=True)
    return Imported(key, pairs, queries)


def _spill(path: str, fmt: str, spill: str, n: int, progress: bool) -> None:
    """Every pair of the file, checked, into ``n`` bucket files (a query's pairs all in one bucket)."""
    shutil.rmtree(spill, ignore_errors=True)
    os.makedirs(spill)
    writers: dict[int, pq.ParquetWriter] = {}
    seen = 0
    try:
        with bar(desc=f"reading {os.path.basename(path)}", unit="pair", show=progress) as b:
            for table, lines in FORMATS[fmt](path):
                table = _check_block(table, lines, path, seen)
                seen += len(table)
                which = _bucket_of(table["qid"], n)
                for i in np.unique(which).tolist():
                    if i not in writers:
                        writers[i] = pq.ParquetWriter(os.path.join(spill, f"{i:03d}.parquet"), SPILL)
                    writers[i].write_table(table.filter(pa.array(which == i)))
                b.update(len(table))
    finally:
        for w in writers.values():
            w.close()


def _read_bucket(spill: str, i: int) -> pa.Table | None:
    path = os.path.join(spill, f"{i:03d}.parquet")
    return pq.read_table(path, schema=SPILL) if os.path.exists(path) else None


def _check_twice(table: pa.Table, path: str) -> None:
    """InputError at the first line that gives a pair another score than its first one."""
    first = table.group_by(["qid", "docid"], use_threads=False).aggregate([("score", "first")])
    joined = table.join(first, ["qid", "docid"])
    other = joined.filter(pc.not_equal(joined["score"], joined["score_first"]))
    if len(other):
        row = other.sort_by([("line", "ascending")]).slice(0, 1).to_pylist()[0]
        raise InputError(f"document {row['docid']!r} of query {row['qid']!r} has two scores, {row['score_first']:g} and "
                         f"{row['score']:g}", path, row["line"])
