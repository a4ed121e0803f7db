"""Text views (Translate-Distill): a collection in one language with the source text of each document by id."""

import json
import os

import pytest

from irdistill.cache import ScoreCache
from irdistill.data import Corpus, load_dataset, run_from_dict
from irdistill.data.dataset import load_view
from irdistill.errors import InputError
from irdistill.teachers import score_run
from irdistill.training import ExampleConfig, as_hf_dataset, build_examples
from test_cache import Overlap

GERMAN = {"d1": "Katzen schnurren leise", "d2": "Hunde bellen laut", "d3": "Tee wird aus Blättern gebrüht"}
ENGLISH = {"d1": "cats purr quietly", "d2": "dogs bark loudly", "d3": "tea is brewed from leaves"}


@pytest.fixture
def xling(tmp_path):
    from conftest import write_beir

    folder = write_beir(tmp_path / "xl", {d: ("", t) for d, t in GERMAN.items()},
                        {"q1": "cats purr", "q2": "tea leaves"}, {"train": [("q1", "d1", 1), ("q2", "d3", 1)]})
    with open(os.path.join(folder, "corpus.en.jsonl"), "w") as f:
        for d, t in reversed(list(ENGLISH.items())):  # another order: joined by id, not by line
            f.write(json.dumps({"_id": d, "title": "", "text": t}) + "\n")
    return folder


def test_beir_folder_views_join_by_id(xling):
    ds = load_dataset(xling, "train")
    assert list(ds.views) == ["en"]
    assert ds.corpus.texts(["d1"]) == [GERMAN["d1"]] and ds.view("en").texts(["d1"]) == [ENGLISH["d1"]]
    with pytest.raises(InputError, match="no text view 'fr'"):
        ds.view("fr")


def test_view_missing_a_document_is_an_error(xling):
    path = os.path.join(xling, "corpus.en.jsonl")
    lines = open(path).read().splitlines()
    open(path, "w").write("\n".join(lines[1:]) + "\n")  # drop d3's English text
    with pytest.raises(InputError, match=r"corpus.en.jsonl: view 'en' lacks document 'd3'"):
        load_dataset(xling, "train")


def test_view_from_another_source_by_id(xling, tmp_path):
    """The neuMARCO shape: translated documents, with the originals from another source (file or ir_datasets id)."""
    ds = load_dataset(xling, "train")
    path = tmp_path / "originals.jsonl"
    path.write_text("".join(json.dumps({"_id": d, "text": t.upper()}) + "\n" for d, t in ENGLISH.items()))
    ds.add_view("upper", load_view(path))
    assert ds.view("upper").texts(["d2"]) == ["DOGS BARK LOUDLY"]


def test_teacher_and_student_read_different_views(xling, tmp_path):
    ds = load_dataset(xling, "train")
    run = run_from_dict({q: {d: 0.0 for d in GERMAN} for q in ds.queries})
    cache = ScoreCache(tmp_path / "cache")
    german, english = Overlap(), Overlap()
    english.text_view = "en"
    kg = score_run(german, run, ds, cache, progress=False).key
    ke = score_run(english, run, ds, cache, progress=False).key
    assert german.id != english.id and kg != ke  # the text view is part of the cache key: the two never mix
    assert cache.describe(ke)["text_view"] == "en"
    en = cache.read(ke).set_index(["qid", "docid"]).score
    de = cache.read(kg).set_index(["qid", "docid"]).score
    assert en[("q1", "d1")] == 2 and de[("q1", "d1")] == 0  # only the English text shares words with the query
    examples = build_examples(ds, cache, ExampleConfig(teacher=ke, negatives=1))
    row = as_hf_dataset(examples, ds)[0]  # the student reads the German documents
    assert row["document_1"] == GERMAN[examples[0]["document_ids"][0]]


def test_view_from_an_ir_datasets_id(tmp_path):
    """Joining by id through ir_datasets (as neuMARCO's translations join msmarco-passage): beir/scifact, cached."""
    import subprocess
    import sys

    from conftest import SHARED
    from test_data import fill_ir_datasets_cache

    fill_ir_datasets_cache(tmp_path)
    code = ("from irdistill.data import load_dataset; from irdistill.data.dataset import load_view; "
            f"ds = load_dataset({os.path.join(SHARED, 'scifact')!r}, 'test'); ds.add_view('irds', load_view('beir/scifact')); "
            "ids = ds.corpus.ids.to_pylist()[:50]; print(ds.view('irds').texts(ids) == ds.corpus.texts(ids))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "IR_DATASETS_HOME": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
