import os

import pandas as pd
import pytest

from irdistill.data import Corpus, load_dataset, load_files, read_run, run_from_dict, run_to_dict, write_run
from irdistill.errors import InputError


def test_beir_folder_split(beir_dir):
    ds = load_dataset(beir_dir, "test")
    assert (ds.name, ds.split, len(ds.corpus)) == ("toy", "test", 6)
    assert set(ds.queries) == {"q1", "q2", "q3"}  # only the split's judged queries
    assert ds.qrels["q2"] == {"d4": 2, "d3": 1}
    assert ds.corpus.texts(["d3"]) == ["Python Python is a programming language with dynamic typing."]
    assert set(load_dataset(beir_dir, "train").queries) == {"q4"}


def test_msmarco_files(tmp_path):
    (tmp_path / "collection.tsv").write_text("0\tthe first passage\n1\tthe second passage\n")
    (tmp_path / "queries.dev.small.tsv").write_text("100\twhat is first\n101\twhat is second\n")
    (tmp_path / "qrels.dev.small.tsv").write_text("100 0 0 1\n101 0 1 1\n")
    ds = load_dataset(tmp_path)
    assert ds.split == "dev.small" and len(ds.corpus) == 2 and ds.qrels == {"100": {"0": 1}, "101": {"1": 1}}
    assert ds.corpus.texts(["1"]) == ["the second passage"]


def test_corpus_is_columnar_and_batched():
    corpus = Corpus.from_records(((str(i), "", f"text {i}") for i in range(25)), batch=10)
    assert len(corpus) == 25 and corpus.table.num_columns == 3
    starts = [(s, len(ids)) for s, ids, _ in corpus.batches(size=10)]
    assert starts == [(0, 10), (10, 10), (20, 5)]
    assert corpus.rows(["24", "3"]) == [24, 3]
    assert corpus.contains(["3", "x"]) == [True, False]
    with pytest.raises(KeyError, match="'x'"):
        corpus.rows(["x"])


def fill_ir_datasets_cache(home, name="scifact"):
    """Place the shared BEIR folder where ir_datasets keeps its download (shared/datasets/README.md)."""
    import zipfile

    from conftest import SHARED

    (home / "beir" / name).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(home / "beir" / name / "source.zip", "w") as z:
        for root, _, files in os.walk(os.path.join(SHARED, name)):
            for f in files:
                full = os.path.join(root, f)
                z.write(full, os.path.join(name, os.path.relpath(full, os.path.join(SHARED, name))))


def test_ir_datasets_id_offline(tmp_path):
    """beir/scifact/test loads through ir_datasets, offline, from a pre-filled cache."""
    import subprocess
    import sys

    from conftest import SHARED

    fill_ir_datasets_cache(tmp_path)
    code = ("from irdistill.data import load_dataset; ds = load_dataset('beir/scifact/test'); "
            "print(len(ds.corpus), len(ds.queries), sum(map(len, ds.qrels.values())), ds.corpus.fingerprint())")
    env = {**os.environ, "IR_DATASETS_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    folder = load_dataset(os.path.join(SHARED, "scifact"), "test")
    assert out.split() == ["5183", "300", "339", folder.corpus.fingerprint()]


def test_run_round_trip(tmp_path):
    run = run_from_dict({"q1": {"a": 1.0, "b": 3.0, "c": 2.0}, "q2": {"a": 0.5}})
    assert run[run.qid == "q1"].docid.tolist() == ["b", "c", "a"] and run["rank"].tolist() == [1, 2, 3, 1]
    for name in ["run.trec", "run.parquet"]:
        back = read_run(write_run(run, tmp_path / name))
        pd.testing.assert_frame_equal(back, run, check_dtype=False)
    assert run_to_dict(read_run(tmp_path / "run.trec"))["q1"]["b"] == pytest.approx(3.0)
    first = (tmp_path / "run.trec").read_text().splitlines()[0].split()
    assert first == ["q1", "Q0", "b", "1", "3.000000", "irdistill"]


def test_run_ties_are_deterministic():
    run = run_from_dict({"q": {"z": 1.0, "a": 1.0, "m": 1.0}})
    assert run.docid.tolist() == ["a", "m", "z"]


def test_explicit_files(beir_dir):
    ds = load_files(os.path.join(beir_dir, "corpus.jsonl"), os.path.join(beir_dir, "queries.jsonl"))
    assert len(ds.queries) == 4 and ds.qrels == {}
    with pytest.raises(InputError, match="no split 'dev'"):
        load_dataset(beir_dir, "dev")


def test_add_positives_appends_missed_judged_documents():
    from irdistill.data.runs import add_positives

    run = run_from_dict({"q1": {"a": 3.0, "b": 2.0}, "q2": {"c": 1.0}})
    out = add_positives(run, {"q1": {"a": 1, "z": 1, "n": 0}, "q2": {"c": 2}})
    assert out[out.qid == "q1"].docid.tolist() == ["a", "b", "z"]  # z added last; n (grade 0) is not a positive
    assert out[out.qid == "q2"].docid.tolist() == ["c"]


# content fingerprint (issue 14) ------------------------------------------------------------------------------------
import json  # noqa: E402

from irdistill.data import corpus as corpus_module  # noqa: E402


def write_corpus(path, docs):
    path.write_text("".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in docs.items()))
    return path


DOCS = {"d1": ("Cats", "purr"), "d2": ("Dogs", "bark"), "d3": ("", "tea")}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    return tmp_path / "user-cache"


@pytest.mark.parametrize("change", [("d2", ("Dogs", "barks")), ("d2", ("Dog", "bark")), ("d3", ("", "teA"))])
def test_fingerprint_covers_ids_titles_and_texts(tmp_path, isolated_cache, change):
    base = Corpus.from_jsonl(write_corpus(tmp_path / "a.jsonl", DOCS)).fingerprint()
    edited = Corpus.from_jsonl(write_corpus(tmp_path / "b.jsonl", {**DOCS, change[0]: change[1]})).fingerprint()
    assert edited != base and len(edited) == 16
    renamed = {("d9" if d == "d3" else d): v for d, v in DOCS.items()}
    assert Corpus.from_jsonl(write_corpus(tmp_path / "c.jsonl", renamed)).fingerprint() != base
    # field boundaries count: moving a character from title to text is a change
    moved = {**DOCS, "d1": ("Cat", "spurr")}
    assert Corpus.from_jsonl(write_corpus(tmp_path / "d.jsonl", moved)).fingerprint() != base


def test_fingerprint_is_the_content_not_the_source_or_chunks(tmp_path, isolated_cache):
    import pyarrow as pa

    from_file = Corpus.from_jsonl(write_corpus(tmp_path / "a.jsonl", DOCS))
    in_memory = Corpus.from_records([(d, t, x) for d, (t, x) in DOCS.items()], batch=1)
    assert from_file.fingerprint() == in_memory.fingerprint()
    table = from_file.table
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=1))
    assert corpus_module.content_fingerprint(chunked) == corpus_module.content_fingerprint(table)
    sliced = pa.concat_tables([table.slice(0, 2), table.slice(2)])  # chunks with non-zero offsets
    assert corpus_module.content_fingerprint(sliced) == from_file.fingerprint()


def test_editing_a_document_in_place_changes_the_fingerprint(tmp_path, isolated_cache):
    """Same size, modification time put back: the change time still tells the sidecar is stale."""
    path = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    first = Corpus.from_jsonl(path).fingerprint()
    st = os.stat(path)
    path.write_text(path.read_text().replace("purr", "PURR"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.path.getsize(path) == st.st_size
    assert Corpus.from_jsonl(path).fingerprint() != first


def test_fingerprint_sidecar_is_reused(tmp_path, isolated_cache, monkeypatch):
    path = write_corpus(tmp_path / "corpus.jsonl", DOCS)
    fp = Corpus.from_jsonl(path).fingerprint()
    sidecar = tmp_path / ".corpus.jsonl.fingerprint.json"
    assert json.loads(sidecar.read_text())["fingerprint"] == fp

    def boom(table):
        raise AssertionError("rehashed")

    monkeypatch.setattr(corpus_module, "content_fingerprint", boom)
    assert Corpus.from_jsonl(path).fingerprint() == fp  # from the sidecar
    sidecar.write_text("{broken")  # a damaged sidecar is ignored
    with pytest.raises(AssertionError, match="rehashed"):
        Corpus.from_jsonl(path)


def test_fingerprint_of_a_read_only_folder_goes_to_the_user_cache(tmp_path, isolated_cache, monkeypatch):
    data = tmp_path / "shared"
    data.mkdir()
    path = write_corpus(data / "corpus.jsonl", DOCS)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(data) else real_access(p, mode))
    fp = Corpus.from_jsonl(path).fingerprint()
    assert os.listdir(data) == ["corpus.jsonl"]
    (stored,) = (isolated_cache / "irdistill" / "fingerprints").iterdir()
    assert json.loads(stored.read_text())["fingerprint"] == fp
    monkeypatch.setattr(corpus_module, "content_fingerprint", lambda t: pytest.fail("rehashed"))
    assert Corpus.from_jsonl(path).fingerprint() == fp


def test_bad_id_characters_agree_between_python_and_pyarrow():
    """Ids are checked per record in Python and per column with RE2 (pyarrow): both refuse the same characters,
    every character str.split() splits on among them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from irdistill.data.io import _BAD_ID, RE2_BAD_ID

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    python = [c for c in chars if _BAD_ID.search(c)]
    re2 = [c for c, bad in zip(chars, pc.match_substring_regex(pa.array(chars), RE2_BAD_ID).to_pylist()) if bad]
    assert python == re2 and {c for c in chars if c.isspace()} <= set(python) and "\ufeff" in python
