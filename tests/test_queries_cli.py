"""`irdistill generate-queries`: a model-free generator on the toy BEIR folder, the cached rerun, consistency through
BM25, a collection with no labels, and bad options (one line, exit 2, nothing written, no model loaded)."""

import json
import os

import pytest
from test_bad_cli import assert_one_line, run_cli

from irdistill.data import load_dataset
from irdistill.errors import InputError
from irdistill.queries import load_corpus


def main_out(capsys, *argv):
    """Exit code, stdout and stderr of ``irdistill generate-queries ARGV -q``."""
    from irdistill.cli import main

    code = main(["generate-queries", *map(str, argv), "-q"])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def test_span_queries_then_a_rerun_generates_nothing(capsys, beir_dir, tmp_path):
    out = tmp_path / "gen"
    argv = ["--dataset", beir_dir, "--generator", "span", "--option", "min_words=3", "--option", "max_words=5",
            "--per-passage", "2", "--sample", "4", "--filter", "dedup=doc", "--output", out]
    code, printed, err = main_out(capsys, *argv)
    assert code == 0 and "generated 4 passages now" in printed, err
    (folder,) = [p for p in out.iterdir() if p.name != "raw"]
    meta_mtime = os.stat(folder / "meta.json").st_mtime_ns
    code, printed, _ = main_out(capsys, *argv)
    assert code == 0 and printed.startswith(f"queries: {folder} (") and "generated 0 passages now" in printed
    assert os.stat(folder / "meta.json").st_mtime_ns == meta_mtime
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["counts"]["documents"] == 4 and meta["generated_documents"] == 4
    assert meta["description"]["raw"]["generator"] == {"kind": "span", "min_words": 3, "max_words": 5}
    ds = load_dataset(folder, "train")
    assert len(ds.queries) == meta["counts"]["kept"] > 0
    for qid, text in ds.queries.items():  # each query is cut out of the passage its qrels name
        (docid,) = ds.qrels[qid]
        assert qid.startswith(f"{folder.name}:{docid}-q") and text in " ".join(ds.corpus.texts([docid])[0].split())
    assert len(os.listdir(out / "raw" / meta["raw_id"])) == 2  # _generator.json and one part


def test_consistency_through_bm25_and_a_collection_without_labels(capsys, beir_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    os.link(os.path.join(beir_dir, "corpus.jsonl"), bare / "corpus.jsonl")  # no queries, no qrels
    code, out, err = main_out(capsys, "--dataset", bare, "--generator", "sentence", "--filter", "min_words=1",
                              "--filter", "consistency=bm25", "--filter", "consistency_index=" + str(tmp_path / "bm25"),
                              "--output", tmp_path / "gen")
    assert code == 0, err
    meta = json.loads(open(os.path.join(out.split()[1], "meta.json")).read())
    assert meta["description"]["filters"]["consistency"] == {"k": 1, "ranker": "bm25"}
    assert meta["counts"]["kept"] + meta["counts"]["dropped"]["consistency"] == 6
    assert meta["counts"]["kept"] >= 5  # a sentence of a passage finds its passage first, nearly always


def test_load_corpus_takes_folders_files_and_refuses_the_rest(beir_dir, tmp_path):
    assert len(load_corpus(beir_dir).corpus) == len(load_corpus(os.path.join(beir_dir, "corpus.jsonl")).corpus) == 6
    for bad in (tmp_path, tmp_path / "nope"):
        with pytest.raises(InputError):
            load_corpus(bad)


@pytest.mark.parametrize("argv,words", [
    (["--generator", "poem"], "unknown generator 'poem'"),
    (["--generator", "span:some-model"], "takes no model"),
    (["--generator", "span", "--option", "length=3"], "generator span has no option length"),
    (["--generator", "span", "--option", "min_words=20"], "min_words <= max_words"),
    (["--generator", "title", "--option", "x"], "--option takes key=value"),
    (["--generator", "title", "--per-passage", "0"], "--per-passage must be at least 1"),
    (["--generator", "title", "--sample", "-2"], "--sample must be at least 1"),
    (["--generator", "title", "--filter", "nope=1"], "--filter has no option nope"),
    (["--generator", "title", "--filter", "max_copy=2"], "max_copy must be a number from 0 to 1"),
    (["--generator", "title", "--filter", "dedup=all"], "dedup must be"),
    (["--generator", "title", "--filter", "consistency=nope"], "unknown retriever 'nope'"),
    (["--generator", "title", "--filter", "consistency=dense"], "needs consistency_model"),
    (["--generator", "title", "--filter", "consistency=bm25", "--filter", "consistency_k=0"], "consistency_k"),
    (["--generator", "title", "--shard", "2/2"], "--shard 2/2"),
    (["--generator", "llm"], "needs a model"),
    (["--generator", "llm:nobody/no-model", "--option", "tempature=0.5"], "generator llm has no option tempature"),
    (["--generator", "llm:nobody/no-model", "--option", "template=sonnet"], "unknown prompt template 'sonnet'"),
])
def test_bad_options_say_so_in_one_line_and_write_nothing(capsys, beir_dir, tmp_path, argv, words):
    code, err = run_cli(capsys, "generate-queries", "--dataset", beir_dir, *argv, "--output", tmp_path / "gen")
    assert_one_line(code, err, words)
    assert not (tmp_path / "gen").exists()
