"""The MS MARCO recipe (experiments/msmarco/run.sh) end to end on a tiny MS MARCO-format collection made from SciFact:
through an MS MARCO folder and through ir_datasets ids, as a user runs it (the CLI in fresh processes)."""

import gzip
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import SHARED

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_msmarco():
    """SciFact as MS MARCO: passages ``pid<TAB>text``, queries ``qid<TAB>text``, TREC qrels; 40 training queries,
    20 dev/small, 10 each for TREC DL 2019 and 2020 (graded 2), their positives and 300 other passages."""
    from irdistill.data import load_dataset

    train, test = (load_dataset(os.path.join(SHARED, "scifact"), s) for s in ("train", "test"))
    splits = {"train": list(train.qrels)[:40]}
    tests = list(test.qrels)
    splits.update({"dev.small": tests[:20], "trec-dl-2019": tests[20:30], "trec-dl-2020": tests[30:40]})
    qrels = {**train.qrels, **test.qrels}
    docs = sorted({d for qs in splits.values() for q in qs for d in qrels[q]})
    docs += [d for d in train.corpus.ids.to_pylist() if d not in set(docs)][:300]
    texts = dict(zip(docs, (" ".join(t.split()) for t in train.corpus.texts(docs))))
    queries = {**train.queries, **test.queries}
    grade = {"train": 1, "dev.small": 1, "trec-dl-2019": 2, "trec-dl-2020": 2}
    return texts, {s: ({q: queries[q] for q in qs}, {q: qrels[q] for q in qs}, grade[s]) for s, qs in splits.items()}


def write_folder(folder, texts, splits):
    os.makedirs(folder)
    with open(os.path.join(folder, "collection.tsv"), "w") as f:
        f.writelines(f"{d}\t{t}\n" for d, t in texts.items())
    for split, (queries, qrels, grade) in splits.items():
        with open(os.path.join(folder, f"queries.{split}.tsv"), "w") as f:
            f.writelines(f"{q}\t{t}\n" for q, t in queries.items())
        with open(os.path.join(folder, f"qrels.{split}.tsv"), "w") as f:
            f.writelines(f"{q} 0 {d} {grade}\n" for q, ds in qrels.items() for d in ds)


def write_ir_datasets(home, texts, splits):
    """The files ir_datasets keeps for msmarco-passage once downloaded (so it reads them and downloads nothing)."""
    base = os.path.join(home, "msmarco-passage")
    where = {"train": ("train/queries.tsv", "train/qrels"), "dev.small": ("dev/small/queries.tsv", "dev/small/qrels"),
             "trec-dl-2019": ("trec-dl-2019/queries.tsv", "trec-dl-2019/qrels"),
             "trec-dl-2020": ("trec-dl-2020/queries.tsv.gz", "trec-dl-2020/qrels")}
    write_folder(base + ".tmp", texts, splits)
    os.makedirs(base)
    os.replace(os.path.join(base + ".tmp", "collection.tsv"), os.path.join(base, "collection.tsv"))
    with open(os.path.join(base, "irds_version.txt"), "w") as f:
        f.write("v2")
    for split, (q_path, r_path) in where.items():
        for src, dst in ((f"queries.{split}.tsv", q_path), (f"qrels.{split}.tsv", r_path)):
            os.makedirs(os.path.dirname(os.path.join(base, dst)), exist_ok=True)
            data = open(os.path.join(base + ".tmp", src), "rb").read()
            with (gzip.open if dst.endswith(".gz") else open)(os.path.join(base, dst), "wb") as f:
                f.write(data)


def run_recipe(work, source, tiny_model_dir, env=None):
    config = work / "student.yaml"
    recipe = yaml.safe_load(open(os.path.join(ROOT, "experiments", "msmarco", "margin-mse.yaml")))
    config.write_text(yaml.safe_dump({**recipe, "model": tiny_model_dir, "max_steps": 4, "batch_size": 4,
                                      "max_seq_length": 32, "precision": "fp32"}))
    env = {**os.environ, "MSMARCO": source, "QUERIES": "30", "DEPTH": "20", "CONFIG": str(config),
           "TEACHER": f"bi-encoder:{tiny_model_dir}", "IRDISTILL": f"{sys.executable} -m irdistill",
           "IRDISTILL_INDEXES": str(work / "indexes"), **(env or {})}
    subprocess.run(["bash", os.path.join(ROOT, "experiments", "msmarco", "run.sh")], cwd=work, env=env, check=True,
                   capture_output=True)
    return {name: json.loads((work / "runs" / name / "metrics.json").read_text())["metrics"]
            for name in os.listdir(work / "runs") if os.path.isdir(work / "runs" / name)}


def test_the_recipe_through_a_folder_and_through_ir_datasets_ids(tmp_path, tiny_model_dir):
    texts, splits = tiny_msmarco()
    write_folder(tmp_path / "msmarco", texts, splits)
    (tmp_path / "a").mkdir()
    files = run_recipe(tmp_path / "a", str(tmp_path / "msmarco"), tiny_model_dir)
    assert set(files) == {"msmarco-dev", "msmarco-trec-dl-2019", "msmarco-trec-dl-2020"}
    assert {"mrr@10", "recall@1000"} <= set(files["msmarco-dev"]) and "ndcg@10" in files["msmarco-trec-dl-2019"]
    assert os.path.exists(tmp_path / "a" / "models" / "msmarco-student" / "final" / "irdistill.json")

    write_ir_datasets(tmp_path / "irds", texts, splits)
    (tmp_path / "b").mkdir()
    ids = run_recipe(tmp_path / "b", "msmarco-passage", tiny_model_dir, {"IR_DATASETS_HOME": str(tmp_path / "irds")})
    assert set(ids) == {"msmarco-dev", "msmarco-trec-dl-2019-judged", "msmarco-trec-dl-2020-judged"}
    # the same collection, queries and training either way: the same numbers
    assert ids["msmarco-dev"] == pytest.approx(files["msmarco-dev"], abs=1e-6)
    assert ids["msmarco-trec-dl-2019-judged"] == pytest.approx(files["msmarco-trec-dl-2019"], abs=1e-6)
