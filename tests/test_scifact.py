"""The foundation's reference numbers on the real SciFact test split (slow: encodes 5,183 abstracts, ~5 min)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import SHARED
from test_data import fill_ir_datasets_cache

pytestmark = pytest.mark.slow
SCIFACT = os.path.join(SHARED, "scifact")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("scifact")


@pytest.fixture(scope="module")
def flat_index(work):
    """The exact (flat) index of all-MiniLM-L6-v2 over SciFact, built once through ``irdistill index``."""
    subprocess.run([sys.executable, "-m", "irdistill", "index", "--dataset", SCIFACT, "--retriever", "dense",
                    "--model", MODEL, "--kind", "flat"], check=True, env={**os.environ, "IRDISTILL_INDEXES": str(work / "indexes")})
    return work / "indexes" / "scifact" / MODEL.replace("/", "_") / "flat"


def evaluate(work, name, *args, env=None):
    """Run ``irdistill evaluate`` as a user would (a fresh process) and return its nDCG@10."""
    out = work / "runs" / name
    cmd = [sys.executable, "-m", "irdistill", "evaluate", "--split", "test", "--metrics", "ndcg@10,recall@100",
           "--output", str(out), *args]
    subprocess.run(cmd, check=True, env={**os.environ, "IRDISTILL_INDEXES": str(work / "indexes"), **(env or {})})
    return json.loads((out / "metrics.json").read_text())["metrics"]["ndcg@10"]


def test_bm25_matches_published_lucene_flat(work):
    assert 0.66 <= evaluate(work, "bm25", "--dataset", SCIFACT, "--retriever", "bm25") <= 0.69


def test_minilm_flat_matches_mteb_and_approximate_indexes_stay_close(work, flat_index):
    dense = ["--dataset", SCIFACT, "--retriever", "dense", "--model", MODEL]
    flat = evaluate(work, "flat", *dense, "--kind", "flat")
    assert flat == pytest.approx(0.645, abs=0.003)  # MTEB publishes 64.51
    for kind in ["hnsw", "ivfpq"]:  # both reuse the encoded corpus of the flat index
        assert abs(evaluate(work, kind, *dense, "--kind", kind) - flat) <= 0.01, kind


def test_same_numbers_through_ir_datasets_id(work, flat_index):
    home = work / "ir_datasets"
    fill_ir_datasets_cache(home)
    env = {"IR_DATASETS_HOME": str(home)}
    assert 0.66 <= evaluate(work, "irds-bm25", "--dataset", "beir/scifact", "--retriever", "bm25", env=env) <= 0.69
    # the same corpus (same fingerprint) through ir_datasets reuses the folder's index
    ndcg = evaluate(work, "irds-flat", "--dataset", "beir/scifact", "--retriever", "dense", "--model", MODEL,
                    "--index", str(flat_index), env=env)
    assert ndcg == pytest.approx(0.645, abs=0.003)
