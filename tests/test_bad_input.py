"""Bad input: one line naming the file (and line), exit code 2, no traceback, nothing half-written."""

import json
import os

import pytest

from irdistill.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def evaluate(beir_dir, out, *extra):
    return ("evaluate", "--dataset", beir_dir, "--split", "test", "--retriever", "bm25", "--output", str(out), *extra)


def assert_one_line(code, err, *needles):
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_missing_dataset_folder(capsys, tmp_path):
    code, err = run_cli(capsys, *evaluate(str(tmp_path / "nope"), tmp_path / "out"))
    assert_one_line(code, err, "nope", "no such folder")
    assert not (tmp_path / "out").exists()


def test_malformed_jsonl_line(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    lines = open(path).read().splitlines()
    lines[2] = '{"_id": "d3", "title": "broken'
    open(path, "w").write("\n".join(lines) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:3:", "malformed JSON")
    assert not (tmp_path / "out").exists()


def test_missing_field(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "queries.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "q9"}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:5:", "text")


def test_empty_query_text(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "queries.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "q9", "text": "  "}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:5:", "no text")


def test_wrong_tsv_columns(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "qrels", "test.tsv")
    with open(path, "a") as f:
        f.write("q1\td2\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:6:", "expected 3 columns, found 2")


@pytest.mark.parametrize("row,what", [("qX\td1\t1", "unknown query id 'qX'"), ("q1\tdX\t1", "unknown document id 'dX'")])
def test_qrels_unknown_ids(capsys, beir_dir, tmp_path, row, what):
    path = os.path.join(beir_dir, "qrels", "test.tsv")
    with open(path, "a") as f:
        f.write(row + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:6:", what)


def test_empty_corpus(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    open(path, "w").close()
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, path, "empty")


def test_unknown_metric(capsys, beir_dir, tmp_path):
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out", "--metrics", "ndcg@10,bleu@4"))
    assert_one_line(code, err, "unknown metric 'bleu@4'")
    assert not (tmp_path / "out").exists()


def test_malformed_run_file(capsys, beir_dir, tmp_path):
    run = tmp_path / "bad.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\nq1 Q0 d2 2 high x\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out", "--run", str(run)))
    assert_one_line(code, err, f"{run}:2:", "score 'high'")
    assert not (tmp_path / "out").exists()


def test_missing_run_file(capsys, tmp_path, beir_dir):
    code, err = run_cli(capsys, "compare", str(tmp_path / "none.trec"), "--dataset", beir_dir)
    assert_one_line(code, err, "none.trec", "no such file")


def test_wrong_parquet_schema(capsys, tmp_path, beir_dir):
    import pandas as pd

    path = tmp_path / "run.parquet"
    pd.DataFrame({"query": ["q1"], "doc": ["d1"]}).to_parquet(path)
    code, err = run_cli(capsys, "compare", str(path), "--dataset", beir_dir)
    assert_one_line(code, err, str(path), "missing column(s) qid, docid, score")


def test_duplicate_document_id(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    with open(path, "a") as f:
        f.write(json.dumps({"_id": "d1", "title": "", "text": "again"}) + "\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, path, "duplicate document id 'd1'")


def test_unknown_teacher_kind(capsys, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", "oracle:gpt", "--run", str(run), "--dataset", beir_dir,
                        "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, "unknown teacher kind 'oracle'")
    assert not (tmp_path / "cache").exists()


def test_run_naming_unknown_document(capsys, beir_dir, tmp_path, tiny_model_dir):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 nosuchdoc 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", f"bi-encoder:{tiny_model_dir}", "--run", str(run),
                        "--dataset", beir_dir, "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, "nosuchdoc")
    assert not list((tmp_path / "cache").glob("*/part-*"))


def test_malformed_teacher_yaml(capsys, beir_dir, tmp_path):
    spec = tmp_path / "teacher.yaml"
    spec.write_text("kind: ensemble\nmembers: [\n")
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    code, err = run_cli(capsys, "score", "--teacher", str(spec), "--run", str(run), "--dataset", beir_dir,
                        "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, str(spec), "malformed teacher file")


def test_bad_training_config(capsys, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("output: x\ndataset: y\ncache: z\nexamples: {teacher: t}\nepochz: 3\n")
    code, err = run_cli(capsys, "train", "--config", str(cfg))
    assert_one_line(code, err, str(cfg), "unknown training option(s): epochz")


# every bad file the loaders can meet, one row each (issue 14) -------------------------------------------------------
import gzip  # noqa: E402

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from irdistill.cache import ScoreCache, import_teacher_file  # noqa: E402
from irdistill.data import Corpus, load_files, read_queries, read_run  # noqa: E402
from irdistill.data.dataset import read_qrels  # noqa: E402
from irdistill.errors import InputError  # noqa: E402


def corpus(path):
    return Corpus.from_jsonl(path) if ".jsonl" in path.name else Corpus.from_tsv(path)


def qrels_in_dataset(path):
    folder = path.parent
    (folder / "c.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n')
    (folder / "q.jsonl").write_text('{"_id": "q1", "text": "a"}\n')
    return load_files(folder / "c.jsonl", folder / "q.jsonl", path)


def margin_mse(path):
    return import_teacher_file(ScoreCache(path.parent / "cache"), path, "margin-mse", progress=False)


def parquet(df=None, table=None):
    def write(path):
        if table is not None:
            pq.write_table(table, path)
        else:
            df.to_parquet(path)
    return write


def gz(data: bytes, cut: bool = False):
    def write(path):
        blob = gzip.compress(data)
        path.write_bytes(blob[: len(blob) // 2] if cut else blob)
    return write


def directory(path):
    path.mkdir()


J = b'{"_id": "d1", "title": "", "text": "a"}\n'
RUN = b"q1 Q0 d1 1 2.5 x\n"
QRELS = b"query-id\tcorpus-id\tscore\nq1\td1\t1\n"
SCORES = pa.array([1.0, 2.0], pa.float32())

# (case, file name, content (bytes, or a function writing the file), loader, line (None: no line), words)
CASES = [
    ("corpus not UTF-8", "corpus.jsonl", J + b'{"_id": "d2", "text": "caf\xe9"}\n', corpus, 2, "not UTF-8 text (byte 0xe9 at column 27)"),
    ("corpus empty", "corpus.jsonl", b"", corpus, None, "the corpus is empty"),
    ("corpus blank lines", "corpus.jsonl", b"\n \n\t\n", corpus, None, "the corpus is empty"),
    ("corpus malformed JSON", "corpus.jsonl", J + b'{"_id": "d2",\n', corpus, 2, "malformed JSON"),
    ("corpus JSON array", "corpus.jsonl", b"[1, 2]\n", corpus, 1, "expected a JSON object"),
    ("corpus nesting too deep", "corpus.jsonl", b"[" * 100_000 + b"\n", corpus, 1, "malformed JSON"),
    ("corpus number too long", "corpus.jsonl", b'{"_id": ' + b"7" * 5000 + b"}\n", corpus, 1, "malformed JSON"),
    ("corpus missing _id", "corpus.jsonl", J + b'{"text": "x"}\n', corpus, 2, "missing field(s) _id"),
    ("corpus null _id", "corpus.jsonl", b'{"_id": null, "text": "x"}\n', corpus, 1, "document id must be a string, not NoneType"),
    ("corpus list _id", "corpus.jsonl", b'{"_id": ["d"], "text": "x"}\n', corpus, 1, "document id must be a string, not list"),
    ("corpus _id with a space", "corpus.jsonl", J + b'{"_id": "d 2", "text": "x"}\n', corpus, 2, "document id 'd 2' contains whitespace"),
    ("corpus _id with a tab", "corpus.jsonl", b'{"_id": "d\\t2", "text": "x"}\n', corpus, 1, "contains whitespace"),
    ("corpus _id with a no-break space", "corpus.jsonl", '{"_id": "d\u00a02"}\n'.encode(), corpus, 1, "contains whitespace"),
    ("corpus _id with a byte-order mark", "corpus.jsonl", b'{"_id": "\\ufeffd1"}\n', corpus, 1, "contains the invisible character '\\ufeff'"),
    ("corpus _id with a control character", "corpus.jsonl", b'{"_id": "d\\u00071"}\n', corpus, 1, "contains the invisible character '\\x07'"),
    ("corpus empty _id", "corpus.jsonl", J + b'{"_id": " ", "text": "x"}\n', corpus, 2, "empty document id"),
    ("corpus title not a string", "corpus.jsonl", b'{"_id": "d1", "title": 3, "text": "x"}\n', corpus, 1, "title and text must be strings"),
    ("corpus lone surrogate in text", "corpus.jsonl", J + b'{"_id": "d2", "text": "a\\ud800"}\n', corpus, 2, "invalid character"),
    ("corpus lone surrogate in id", "corpus.jsonl", b'{"_id": "d\\udfff"}\n', corpus, 1, "invalid character"),
    ("corpus duplicate id", "corpus.jsonl", J + b'{"_id": "d2"}\n' + J, corpus, 3, "duplicate document id 'd1' (first on line 1)"),
    ("collection 3 columns", "collection.tsv", b"1\ta\n2\tb\tc\n", corpus, 2, "expected 2 columns, found 3"),
    ("collection id with a space", "collection.tsv", b"1\ta\n2 3\tb\n", corpus, 2, "contains whitespace"),
    ("collection not UTF-8", "collection.tsv", b"1\ta\n2\t\xff\xfe\n", corpus, 2, "not UTF-8"),
    ("collection duplicate id", "collection.tsv", b"1\ta\n2\tb\n1\tc\n", corpus, 3, "duplicate document id '1' (first on line 1)"),
    ("gzip garbage", "corpus.jsonl.gz", b"\x1f\x8b\x08garbage-not-deflate", corpus, 1, "not a readable gzip file"),
    ("gzip not gzip", "corpus.jsonl.gz", J, corpus, 1, "not a readable gzip file"),
    ("gzip truncated", "corpus.jsonl.gz", gz(J * 2000, cut=True), corpus, ..., "not a readable gzip file"),
    ("gzip not UTF-8", "corpus.jsonl.gz", gz(J + b'{"_id": "\xc3("}\n'), corpus, 2, "not UTF-8"),
    ("corpus is a folder", "corpus.jsonl", directory, corpus, None, "not a file"),
    ("corpus missing", "corpus.jsonl", None, corpus, None, "no such file"),
    ("queries no text field", "queries.jsonl", b'{"_id": "q1"}\n', read_queries, 1, "missing field(s) text"),
    ("queries text a number", "queries.jsonl", b'{"_id": "q1", "text": 5}\n', read_queries, 1, "query 'q1' has no text"),
    ("queries id with a space", "queries.jsonl", b'{"_id": "q 1", "text": "a"}\n', read_queries, 1, "query id 'q 1' contains whitespace"),
    ("queries duplicate id", "queries.jsonl", b'{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', read_queries, 2, "duplicate query id 'q1'"),
    ("queries empty", "queries.jsonl", b"", read_queries, None, "no queries"),
    ("queries not UTF-8", "queries.tsv", b"q1\tcaf\xe9\n", read_queries, 1, "not UTF-8"),
    ("queries TSV id with a space", "queries.tsv", b"q1\ta\nq 2\tb\n", read_queries, 2, "contains whitespace"),
    ("queries lone surrogate", "queries.jsonl", b'{"_id": "q1", "text": "\\ud800"}\n', read_queries, 1, "invalid character"),
    ("qrels grade inf", "test.tsv", QRELS + b"q1\td2\tinf\n", lambda p: list(read_qrels(p)), 3, "relevance grade 'inf' is not an integer"),
    ("qrels grade nan", "test.tsv", QRELS + b"q1\td2\tnan\n", lambda p: list(read_qrels(p)), 3, "'nan' is not an integer"),
    ("qrels grade 1.7", "test.tsv", QRELS + b"q1\td2\t1.7\n", lambda p: list(read_qrels(p)), 3, "'1.7' is not an integer"),
    ("qrels grade 1e3", "test.tsv", QRELS + b"q1\td2\t1e3\n", lambda p: list(read_qrels(p)), 3, "'1e3' is not an integer"),
    ("qrels grade a word", "test.tsv", QRELS + b"q1\td2\thigh\n", lambda p: list(read_qrels(p)), 3, "'high' is not an integer"),
    ("qrels grade huge", "test.tsv", QRELS + b"q1\td2\t" + b"9" * 5000 + b"\n", lambda p: list(read_qrels(p)), 3, "is not an integer"),
    ("qrels 2 columns", "test.tsv", QRELS + b"q1\td2\n", lambda p: list(read_qrels(p)), 3, "expected 3 columns, found 2"),
    ("qrels doc id with a space", "test.tsv", QRELS + b"q1\td 2\t1\n", lambda p: list(read_qrels(p)), 3, "document id 'd 2' contains whitespace"),
    ("qrels not UTF-8", "test.tsv", QRELS + b"q1\td\xe92\t1\n", lambda p: list(read_qrels(p)), 3, "not UTF-8"),
    ("qrels TREC 3 columns", "qrels.txt", b"q1 0 d1 1\nq1 0 d2\n", lambda p: list(read_qrels(p)), 2, "expected 4 columns, found 3"),
    ("qrels TREC grade nan", "qrels.txt", b"q1 0 d1 nan\n", lambda p: list(read_qrels(p)), 1, "'nan' is not an integer"),
    ("qrels judged twice", "test.tsv", QRELS + b"q1\td1\t2\n", qrels_in_dataset, 3, "judged twice, with grades 1 and 2"),
    ("qrels empty", "test.tsv", b"", qrels_in_dataset, None, "no judgements"),
    ("qrels unknown document", "test.tsv", QRELS + b"q1\td9\t1\n", qrels_in_dataset, 3, "unknown document id 'd9'"),
    ("run NaN score", "run.trec", RUN + b"q1 Q0 d2 2 nan x\n", read_run, 2, "score nan is not a finite"),
    ("run inf score", "run.trec", RUN + b"q1 Q0 d2 2 -inf x\n", read_run, 2, "score -inf is not a finite"),
    ("run float32 overflow", "run.trec", RUN + b"q1 Q0 d2 2 1e39 x\n", read_run, 2, "is not a finite float32"),
    ("run score a word", "run.trec", RUN + b"q1 Q0 d2 2 high x\n", read_run, 2, "score 'high' is not a number"),
    ("run 5 columns", "run.trec", RUN + b"q1 Q0 d2 2 1.0\n", read_run, 2, "expected 6 columns, found 5"),
    ("run empty", "run.trec", b"", read_run, None, "the run is empty"),
    ("run duplicate pair", "run.trec", RUN + b"q1 Q0 d2 2 1.0 x\nq1 Q0 d1 3 0.5 x\n", read_run, 3, "document 'd1' is listed twice for query 'q1' (first on line 1)"),
    ("run not UTF-8", "run.trec", RUN + b"q1 Q0 d\xff 2 1.0 x\n", read_run, 2, "not UTF-8"),
    ("run is a folder", "run.trec", directory, read_run, None, "not a file"),
    ("parquet string scores", "run.parquet", parquet(pd.DataFrame({"qid": ["q1"], "docid": ["d1"], "score": ["high"]})), read_run, None, "column score holds large_string, not numbers"),
    ("parquet bool scores", "run.parquet", parquet(pd.DataFrame({"qid": ["q1"], "docid": ["d1"], "score": [True]})), read_run, None, "column score holds bool"),
    ("parquet no rows", "run.parquet", parquet(pd.DataFrame({"qid": pd.Series([], dtype=str), "docid": pd.Series([], dtype=str), "score": pd.Series([], dtype=float)})), read_run, None, "the run is empty"),
    ("parquet NaN score", "run.parquet", parquet(table=pa.table({"qid": ["q1", "q1"], "docid": ["d1", "d2"], "score": pa.array([1.0, float("nan")])})), read_run, None, "row 2: score nan is not a finite"),
    ("parquet null score", "run.parquet", parquet(pd.DataFrame({"qid": ["q1", "q1"], "docid": ["d1", "d2"], "score": [1.0, float("nan")]})), read_run, None, "row 2: score is missing"),
    ("parquet null qid", "run.parquet", parquet(table=pa.table({"qid": pa.array([None], pa.string()), "docid": ["d1"], "score": [1.0]})), read_run, None, "row 1: qid is missing"),
    ("parquet id with a space", "run.parquet", parquet(pd.DataFrame({"qid": ["q1"], "docid": ["d 1"], "score": [1.0]})), read_run, None, "row 1: document id 'd 1' contains whitespace"),
    ("parquet id with a NUL", "run.parquet", parquet(pd.DataFrame({"qid": ["q\x00"], "docid": ["d1"], "score": [1.0]})), read_run, None, "row 1: query id 'q\\x00' contains the invisible character"),
    ("parquet list qid", "run.parquet", parquet(table=pa.table({"qid": [["q1"]], "docid": ["d1"], "score": [1.0]})), read_run, None, "column qid holds list"),
    ("parquet duplicate pair", "run.parquet", parquet(pd.DataFrame({"qid": ["q1", "q1"], "docid": ["d1", "d1"], "score": [1.0, 2.0]})), read_run, None, "row 2: document 'd1' is listed twice for query 'q1' (first on row 1)"),
    ("parquet missing column", "run.parquet", parquet(pd.DataFrame({"qid": ["q1"], "score": [1.0]})), read_run, None, "missing column(s) docid"),
    ("parquet garbage", "run.parquet", b"PAR1 not really", read_run, None, "not a readable Parquet file"),
    ("parquet truncated", "run.parquet", lambda p: p.write_bytes(pd.DataFrame({"qid": ["q1"] * 50, "docid": [f"d{i}" for i in range(50)], "score": [1.0] * 50}).to_parquet()[:300]), read_run, None, "not a readable Parquet file"),
    ("margin-mse NaN", "teacher.tsv", b"1.0\t0.5\tq1\td1\td2\nnan\t0.5\tq1\td1\td3\n", margin_mse, 2, "scores must be finite numbers"),
    ("margin-mse word", "teacher.tsv", b"high\t0.5\tq1\td1\td2\n", margin_mse, 1, "scores must be numbers"),
    ("margin-mse 4 columns", "teacher.tsv", b"1.0\t0.5\tq1\td1\n", margin_mse, 1, "expected 5 columns, found 4"),
    ("margin-mse id with a space", "teacher.tsv", b"1.0\t0.5\tq1\td 1\td2\n", margin_mse, 1, "contains whitespace"),
    ("margin-mse empty", "teacher.tsv", b"\n", margin_mse, None, "no lines"),
]


@pytest.mark.parametrize("case,name,content,load,line,words", CASES, ids=[c[0] for c in CASES])
def test_bad_file(tmp_path, case, name, content, load, line, words):
    path = tmp_path / name
    if callable(content):
        content(path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as e:
        load(path)
    message = str(e.value)
    if line is ...:  # some line: where a damaged stream broke off
        assert message.startswith(f"{path}:") and message[len(str(path)) + 1:].split(":")[0].isdigit(), message
    else:
        assert message.startswith(f"{path}:{line}: " if line is not None else f"{path}: "), message
    assert words in message and "\n" not in message, message
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("part-*"))


def test_good_variants_still_load(tmp_path):
    """What the strict loaders must keep accepting: integral grades written as 1.0, BOMs, CRLF, negative grades."""
    (tmp_path / "test.tsv").write_bytes(b"\xef\xbb\xbfquery-id\tcorpus-id\tscore\r\nq1\td1\t1.0\r\nq1\td2\t-1\r\n")
    assert [r[1:] for r in read_qrels(tmp_path / "test.tsv")] == [("q1", "d1", 1), ("q1", "d2", -1)]
    (tmp_path / "c.jsonl").write_bytes(b'\xef\xbb\xbf{"_id": 7, "text": "caf\xc3\xa9"}\r\n')
    assert Corpus.from_jsonl(tmp_path / "c.jsonl").texts(["7"]) == ["café"]
    (tmp_path / "r.trec").write_text("q1 Q0 d1 1 -3.5e2 x\n")
    assert read_run(tmp_path / "r.trec").score.tolist() == [-350.0]


# the same through the command line: exit 2, one line ---------------------------------------------------------------
def test_cli_qrels_grade_inf(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "qrels", "test.tsv")
    with open(path, "a") as f:
        f.write("q1\td2\tinf\n")
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:6:", "relevance grade 'inf' is not an integer")
    assert not (tmp_path / "out").exists()


def test_cli_corpus_not_utf8(capsys, beir_dir, tmp_path):
    path = os.path.join(beir_dir, "corpus.jsonl")
    with open(path, "ab") as f:
        f.write(b'{"_id": "d9", "text": "\xff"}\n')
    code, err = run_cli(capsys, *evaluate(beir_dir, tmp_path / "out"))
    assert_one_line(code, err, f"{path}:7:", "not UTF-8")


def test_cli_parquet_run_with_string_scores(capsys, beir_dir, tmp_path):
    path = tmp_path / "run.parquet"
    pd.DataFrame({"qid": ["q1"], "docid": ["d1"], "score": ["high"]}).to_parquet(path)
    code, err = run_cli(capsys, "compare", str(path), "--dataset", beir_dir)
    assert_one_line(code, err, str(path), "column score holds", "not numbers")


@pytest.mark.parametrize("action", ["compact", "import-margin-mse", "export-trec"])
def test_cli_unsafe_teacher_id(capsys, tmp_path, action):
    tsv = tmp_path / "t.tsv"
    tsv.write_text("1.0\t0.5\tq1\td1\td2\n")
    code, err = run_cli(capsys, "cache", action, "--cache", str(tmp_path / "a" / "b" / "cache"),
                        "--teacher", "x/../../../escaped", "--input", str(tsv), "--output", str(tmp_path / "o.trec"))
    assert_one_line(code, err, "teacher id 'x/../../../escaped' is not a safe name")
    assert sorted(os.listdir(tmp_path)) == ["t.tsv"]


def test_cli_cache_list_with_a_truncated_part(capsys, tmp_path):
    cache = ScoreCache(tmp_path / "cache")
    cache.register("t", {})
    cache.commit("t", ["q1"] * 50, [f"d{i}" for i in range(50)], list(range(50)))
    (part,) = (tmp_path / "cache" / "teacher=t").glob("part-*")
    part.write_bytes(part.read_bytes()[:100])
    code, err = run_cli(capsys, "cache", "list", "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, str(part), "unreadable part file")


def test_cli_cache_that_is_a_file(capsys, beir_dir, tmp_path):
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 0.5 x\n")
    (tmp_path / "cache").write_text("")
    code, err = run_cli(capsys, "score", "--teacher", "bm25", "--run", str(run), "--dataset", beir_dir,
                        "--cache", str(tmp_path / "cache"))
    assert_one_line(code, err, str(tmp_path / "cache"), "not a folder")
