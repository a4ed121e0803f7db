"""Extending irdistill from outside the package: a new index kind and a new student, each one class registered in
one call, run through retrieve(), train() and the CLI without editing any library file."""

import json
import os

import pandas as pd
import pytest
import torch

from irdistill.cli import main
from irdistill.data import load_dataset
from irdistill.data.runs import rank_run
from irdistill.index import INDEXES, Index, building, register_index, retrieve
from irdistill.training import STUDENTS, train
from irdistill.training.students import Objective, Student, register_student
from test_training import cached, config  # noqa: F401  (fixture)


class WordOverlapIndex(Index):
    """A toy index: the documents' word sets in a JSON file; a document scores the words it shares with the query."""

    name = "overlap"

    def __init__(self, path):
        super().__init__(path)
        with open(os.path.join(self.path, "docs.json")) as f:
            self.docs = {d: set(words) for d, words in json.load(f).items()}

    @classmethod
    def build(cls, corpus, path, key, model, kind, batch_size, progress=True, rebuild=False, **params):
        docs = {d: sorted(set(t.lower().split())) for d, t in zip(corpus.ids.to_pylist(), corpus.texts())}
        with building(path, {"kind": cls.name, "key": key}) as work:
            with open(os.path.join(work, "docs.json"), "w") as f:
                json.dump(docs, f)
        return cls(path)

    def search(self, queries, k=1000, batch_size=None, progress=False):
        rows = [(q, d, float(len(set(text.lower().split()) & words))) for q, text in queries.items()
                for d, words in self.docs.items()]
        run = rank_run(pd.DataFrame(rows, columns=["qid", "docid", "score"]).astype({"score": "float32"}))
        return run[(run["rank"] <= k) & (run["score"] > 0)].reset_index(drop=True)


class DotObjective(Objective):
    """Unnormalised dot products of mean-pooled embeddings, own candidates only."""

    def embed(self, features):
        from sentence_transformers.base.losses.merged_forward import embed_columns

        emb = embed_columns(self.model, features)
        return emb[0], torch.stack(emb[1:], 1), None

    def similarity(self, queries, documents, mask=None):
        return queries @ documents.flatten(0, 1).T


class DotStudent(Student):
    name = "dot-bi-encoder"
    objective_class = DotObjective
    retriever = "dense"


@pytest.fixture
def registered():
    register_index(WordOverlapIndex)
    register_student(DotStudent)
    yield
    INDEXES.pop("overlap")
    STUDENTS.pop("dot-bi-encoder")


def test_a_new_index_kind_runs_through_retrieve_and_the_cli(registered, beir_dir, tmp_path, capsys):
    ds = load_dataset(beir_dir, "test")
    run = retrieve(ds, "overlap", k=2, index=str(tmp_path / "idx"))
    assert run[run["rank"] == 1].set_index("qid")["docid"].to_dict()["q3"] == "d6"
    assert main(["evaluate", "--dataset", beir_dir, "--retriever", "overlap", "--index", str(tmp_path / "idx"),
                 "--output", str(tmp_path / "out")]) == 0
    assert "toy-test-overlap" in capsys.readouterr().out
    assert main(["search", "--index", str(tmp_path / "idx"), "--query", "roasted coffee", "-k", "1"]) == 0
    assert capsys.readouterr().out.split()[2] == "d6"  # piped: a TREC run line


def test_a_new_student_trains_through_train_and_the_cli(registered, cached, tiny_model_dir, tmp_path):  # noqa: F811
    import yaml
    from sentence_transformers import SentenceTransformer

    folder, ds, cache, tid = cached
    final = train(config(folder, cache, tid, tmp_path / "out", "dot-bi-encoder", tiny_model_dir, loss="infonce"),
                  progress=False)
    assert SentenceTransformer(final, device="cpu").encode(["w1"]).shape == (1, 32)
    cfg = {"output": str(tmp_path / "cli"), "dataset": folder, "cache": cache, "student": "dot-bi-encoder",
           "model": tiny_model_dir, "examples": {"teacher": tid, "negatives": 3}, "batch_size": 4, "max_steps": 2,
           "loss": "margin-mse", "max_seq_length": 32}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "train.yaml")]) == 0
    assert os.path.exists(tmp_path / "cli" / "final" / "irdistill.json")
