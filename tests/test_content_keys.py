"""Issue 14: an edited document or a changed weight at the same model path rebuilds and re-scores what depends on it,
through the CLI, and nothing else."""

import json
import os
import shutil

from conftest import write_beir
from safetensors.torch import load_file, save_file

from irdistill.cli import main


def built(index: str) -> float:
    """When the index folder was last (re)built: its meta.json is written last, by the swap into place."""
    return os.path.getmtime(os.path.join(index, "meta.json"))


def test_an_edited_document_or_weight_rebuilds_only_what_depends_on_it(beir_dir, tiny_model_dir, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    other = write_beir(tmp_path / "other")
    bm25, dense, other_dense = (str(tmp_path / n) for n in ("bm25", "dense", "other-dense"))
    cache, run = str(tmp_path / "cache"), str(tmp_path / "run.parquet")

    def cli(*args) -> str:
        assert main([*args, "-q"]) == 0
        return capsys.readouterr().out

    def build_all():
        cli("index", "--dataset", beir_dir, "--index", bm25)
        cli("index", "--dataset", beir_dir, "--retriever", "dense", "--model", str(model), "--index", dense)
        cli("index", "--dataset", other, "--retriever", "dense", "--model", str(model), "--index", other_dense)
        cli("candidates", "--dataset", beir_dir, "--retriever", "dense", "--model", str(model), "--index", dense,
            "-k", "3", "--output", run)
        return cli("score", "--teacher", f"bi-encoder:{model}", "--run", run, "--dataset", beir_dir, "--cache", cache)

    assert "scored 9 pairs" in build_all()
    stamps = {p: built(p) for p in (bm25, dense, other_dense)}
    assert "scored 0 pairs" in build_all()  # nothing changed: every index reused, every pair cached
    assert {p: built(p) for p in stamps} == stamps

    # one document's text changes: both indexes of that collection and its teacher scores; not the other collection
    path = os.path.join(beir_dir, "corpus.jsonl")
    lines = open(path).read().splitlines()
    doc = json.loads(lines[1])
    doc["text"] = "zebra quasar"
    lines[1] = json.dumps(doc)
    open(path, "w").write("\n".join(lines) + "\n")
    assert "scored 9 pairs" in build_all()
    assert built(bm25) != stamps[bm25] and built(dense) != stamps[dense] and built(other_dense) == stamps[other_dense]
    hits = cli("search", "--index", bm25, "--query", "zebra quasar").split()
    assert hits[2] == doc["_id"]  # the new words are found: the index holds the new text
    stamps = {p: built(p) for p in stamps}

    # one weight of the model changes at the same path: what the model encoded or scored; not BM25
    weights = os.path.join(model, "model.safetensors")
    tensors = load_file(weights)
    name = next(n for n in tensors if n.endswith("word_embeddings.weight"))
    tensors[name][0, 0] += 1.0
    save_file(tensors, weights, metadata={"format": "pt"})
    assert "scored 9 pairs" in build_all()
    assert built(bm25) == stamps[bm25]
    assert built(dense) != stamps[dense] and built(other_dense) != stamps[other_dense]
