"""Property-based fuzzing of the corpus, queries, qrels and run loaders (issue 14): any bytes either load or raise
InputError whose one-line message names the file; never another exception. What loads is usable: its ids can be
written to a TREC file and read back.

Bounded for CI (about 20 s on 2 cores); ``IRDISTILL_FUZZ=deep`` runs 20x more examples, not derandomized."""

import gzip
import json
import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irdistill.data import Corpus, read_queries, read_run, write_run
from irdistill.data.dataset import read_qrels
from irdistill.errors import InputError

settings.register_profile("ci", max_examples=120, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=2400, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = "deep" if os.environ.get("IRDISTILL_FUZZ") == "deep" else "ci"

# pieces that reach the loaders' corners: odd whitespace, numbers that are not quite numbers, broken UTF-8, escapes
ODD = ["", " ", "\t", "\r", "\x0b", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "\ufeff", "nan", "NaN", "inf", "-inf",
       "1e39", "1.7", "1.0", "-1", "0", "2", "1e3", "9" * 30, "Q0", "query-id", "corpus-id", "score", "q1", "d1", "d 1",
       "é", "\\ud800", "\\u0000", '"', "{", "}", "[", "]", ":", ",", "null", "true", "\x00"]
RAW = [b"\xff", b"\xc3(", b"\xe9", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\x1f\x8b", b"PAR1", b"\n", b"\r\n", b"\t"]
token = st.one_of(st.sampled_from(ODD), st.text(max_size=6))
field = st.lists(token, max_size=3).map("".join)

json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | field,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                          max_leaves=6)
record = st.fixed_dictionaries({}, optional={"_id": json_value, "title": json_value, "text": json_value})


def encode_line(parts) -> bytes:
    return b"".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass") for p in parts)


jsonl_line = st.one_of(
    record.map(lambda r: json.dumps(r).encode()),
    st.builds(lambda i, t: json.dumps({"_id": i, "text": t}).encode(), field, field),
    st.lists(st.one_of(token, st.sampled_from(RAW)), max_size=6).map(encode_line),
)
tsv_line = st.lists(st.one_of(field, st.sampled_from(RAW)), min_size=1, max_size=7).flatmap(
    lambda fields: st.sampled_from(["\t", " ", "  "]).map(lambda sep: encode_line(_join(fields, sep))))
some_id = st.one_of(st.sampled_from(["q1", "q2", "d1", "d2", "7"]), field)
number = st.one_of(st.sampled_from(["1", "0", "1.5", "-2", "nan", "1e39", "1.7", "x"]), st.floats().map(str))
likely_line = st.one_of(  # a TREC run line, a TREC qrels line, a BEIR qrels line, a text line: mostly well formed
    st.tuples(some_id, some_id, number).map(lambda t: f"{t[0]} Q0 {t[1]} 1 {t[2]} tag".encode()),
    st.tuples(some_id, some_id, number).map(lambda t: f"{t[0]} 0 {t[1]} {t[2]}".encode()),
    st.tuples(some_id, some_id, number).map(lambda t: f"{t[0]}\t{t[1]}\t{t[2]}".encode()),
    st.tuples(some_id, field).map(lambda t: encode_line([t[0], "\t", t[1]])),
)
tsv_line = st.one_of(tsv_line, likely_line)


def _join(fields, sep):
    out = []
    for i, f in enumerate(fields):
        out += ([sep] if i else []) + [f]
    return out


def lines(line):
    return st.lists(line, max_size=8).map(lambda ls: b"\n".join(ls) + b"\n")


jsonl_bytes = st.one_of(st.binary(max_size=300), lines(jsonl_line))
tsv_bytes = st.one_of(st.binary(max_size=300), lines(tsv_line))


def check(name: str, data: bytes, load, after=None):
    """Write ``data`` to a fresh file ``name`` and load it: success, or an InputError naming the file, on one line."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(gzip.compress(data) if name.endswith(".gz") and not data.startswith(b"\x1f\x8b") else data)
        try:
            out = load(path)
        except InputError as e:
            assert str(e).startswith(path) and "\n" not in str(e), str(e)
            return
        if after is not None:
            after(out, tmp)


def ids_round_trip(ids, tmp):
    """Ids that loaded can be written into a TREC run and read back unchanged."""
    ids = list(dict.fromkeys(ids))[:50]
    if not ids:
        return
    import pandas as pd

    run = pd.DataFrame({"qid": ids, "docid": ids, "score": [1.0] * len(ids)})
    back = read_run(write_run(run, os.path.join(tmp, "ids.trec")))
    assert sorted(back["docid"]) == sorted(ids)


@settings(settings.get_profile(PROFILE))
@given(jsonl_bytes, st.sampled_from(["corpus.jsonl", "corpus.jsonl.gz"]))
def test_corpus_jsonl(data, name):
    check(name, data, Corpus.from_jsonl, lambda c, tmp: ids_round_trip(c.ids.to_pylist(), tmp))


@settings(settings.get_profile(PROFILE))
@given(tsv_bytes)
def test_corpus_tsv(data):
    check("collection.tsv", data, Corpus.from_tsv, lambda c, tmp: ids_round_trip(c.ids.to_pylist(), tmp))


@settings(settings.get_profile(PROFILE))
@given(st.one_of(jsonl_bytes.map(lambda b: ("queries.jsonl", b)), tsv_bytes.map(lambda b: ("queries.tsv", b))))
def test_queries(named):
    check(named[0], named[1], read_queries, lambda q, tmp: ids_round_trip(q, tmp))


@settings(settings.get_profile(PROFILE))
@given(tsv_bytes)
def test_qrels(data):
    def after(rows, tmp):
        assert all(isinstance(g, int) for *_, g in rows)
        ids_round_trip([q for _, q, _, _ in rows] + [d for _, _, d, _ in rows], tmp)

    check("qrels.tsv", data, lambda p: list(read_qrels(p)), after)


def run_ok(df, tmp):
    assert df["score"].notna().all() and not df.duplicated(["qid", "docid"]).any()
    back = read_run(write_run(df, os.path.join(tmp, "again.trec")))
    assert sorted(zip(back.qid, back.docid)) == sorted(zip(df.qid, df.docid))


@settings(settings.get_profile(PROFILE))
@given(tsv_bytes)
def test_trec_run(data):
    check("run.trec", data, read_run, run_ok)


column = st.one_of(
    st.lists(st.one_of(st.none(), field), min_size=3, max_size=3).map(lambda v: pa.array(v, pa.string())),
    st.lists(st.one_of(st.none(), st.floats(width=64)), min_size=3, max_size=3).map(lambda v: pa.array(v, pa.float64())),
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3).map(lambda v: pa.array(v, pa.int64())),
    st.lists(st.booleans(), min_size=3, max_size=3).map(pa.array),
    st.lists(st.lists(field, max_size=2), min_size=3, max_size=3).map(pa.array),
    st.just(pa.array([None, None, None], pa.null())),
)
random_table = st.dictionaries(st.sampled_from(["qid", "docid", "score", "rank", "extra"]), column, max_size=5).flatmap(
    lambda cols: st.integers(0, 3).map(lambda n: pa.table({k: v.slice(0, n) for k, v in cols.items()}) if cols else None))
run_id = st.one_of(st.sampled_from(["q1", "q2", "d1", "d2", "7", "d 1", "", "\u00a0"]), st.text(max_size=4))
likely_run = st.lists(st.tuples(run_id, run_id, st.one_of(st.floats(), st.integers(-5, 5))), min_size=1, max_size=5).map(
    lambda rows: pa.table({"qid": [r[0] for r in rows], "docid": [r[1] for r in rows],
                           "score": pa.array([float(r[2]) for r in rows], pa.float64())}))
parquet_table = st.one_of(random_table, likely_run)


def parquet_bytes(table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table if table is not None else pa.table({"x": [1]}), sink)
    return sink.getvalue().to_pybytes()


@settings(settings.get_profile(PROFILE))
@given(st.one_of(st.binary(max_size=200), parquet_table.map(parquet_bytes),
                 st.tuples(parquet_table.map(parquet_bytes), st.integers(0, 400)).map(lambda t: t[0][: t[1]])))
def test_parquet_run(data):
    check("run.parquet", data, read_run, run_ok)


def test_the_fuzz_reaches_successful_loads():
    """The strategies are not all garbage: a share of the examples loads (else the properties above test little)."""
    from hypothesis import find

    quick = settings(database=None, max_examples=2000, derandomize=True)
    find(jsonl_bytes, lambda b: _loads("corpus.jsonl", b, Corpus.from_jsonl), settings=quick)
    find(tsv_bytes, lambda b: _loads("run.trec", b, read_run), settings=quick)
    find(parquet_table.map(parquet_bytes), lambda b: _loads("run.parquet", b, read_run), settings=quick)


def _loads(name, data, load) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        try:
            load(path)
            return True
        except InputError:
            return False


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
