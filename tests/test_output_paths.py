"""Writes that escape or destroy (issue 32): every verb checks its output before any work starts (exit 2, one line
naming the option, nothing written), the writers never replace a device, fifo or folder, and a --split never takes a
default output folder outside its place."""

import os
import stat

import pytest

from irdistill.cli import main
from irdistill.data import io
from irdistill.data.dataset import Dataset, load_dataset
from irdistill.errors import InputError
from irdistill.index.base import INDEXES, safe_part


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err.strip()


def tree(root) -> dict:
    """Every path under ``root`` and its file type, links not followed."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = stat.S_IFMT(os.lstat(path).st_mode)
    return out


def make(target, what: str) -> None:
    """A folder, a file, a fifo, or a link to /dev/null at ``target``."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if what == "folder":
        os.mkdir(target)
    elif what == "file":
        open(target, "w").close()
    elif what == "fifo":
        os.mkfifo(target)
    else:
        os.symlink(os.devnull, target)


# verb, its command line ({t}: tmp_path, {d}: the toy dataset, {o}: the output), the option named, what it writes,
# and where the output lies (relative to tmp_path)
VERBS = [
    ("search", "search --index {t}/idx --query cats --output {o}", "--output", "file", "out"),
    ("candidates", "candidates --dataset {d} --output {o}", "--output", "file", "out"),
    ("score", "score --teacher bm25 --run {t}/run.trec --dataset {d} --cache {t}/cache --output {o}", "--output", "file",
     "out"),
    ("export-trec", "cache export-trec --cache {t}/cache --teacher t --output {o}", "--output", "file", "out"),
    ("export-margin-mse", "cache export-margin-mse --cache {t}/cache --teacher t --dataset {d} --output {o}", "--output",
     "file", "out"),
    ("card", "card {t}/results --model {t}/model", "--model", "file", "model/README.md"),
    ("evaluate", "evaluate --dataset {d} --output {o}", "--output", "folder", "out"),
    ("evaluate-index", "evaluate --dataset {d} --index {o}", "--index", "folder", "out"),
    ("index", "index --dataset {d} --index {o}", "--index", "folder", "out"),
    ("report", "report {t}/run.trec --dataset {d} --output {o}", "--output", "folder", "out"),
    ("merge", "merge --base {t}/a --model {t}/b --alpha 0.5 --output {o}", "--output", "folder", "out"),
    ("train", "train --config {t}/train.yaml --output {o}", "--output", "folder", "out"),
    ("generate-queries", "generate-queries --dataset {d} --generator title --output {o}", "--output", "folder", "out"),
    ("adapt", "adapt --dataset {d} --output {o}", "--output", "folder", "out"),
]


@pytest.mark.parametrize("bad", ["wrong kind", "fifo", "device"])
@pytest.mark.parametrize("verb,line,option,kind,where", VERBS, ids=[v[0] for v in VERBS])
def test_a_wrong_output_stops_the_verb_before_any_work(capsys, beir_dir, tmp_path, monkeypatch, verb, line, option,
                                                       kind, where, bad):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 0.5 x\n")
    (tmp_path / "train.yaml").write_text(f"output: {tmp_path / 'model'}\ndataset: {beir_dir}\ncache: {tmp_path / 'cache'}\n"
                                         "examples: {teacher: t, negatives: 3}\n")
    target = str(tmp_path / where)
    make(target, {"wrong kind": "folder" if kind == "file" else "file"}.get(bad, bad))
    mode = os.stat(target).st_mode  # what the link points to, for the device
    before = tree(tmp_path)
    code, err = run_cli(capsys, *line.format(t=tmp_path, d=beir_dir, o=target).split())
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert option in err and target in err and f"not a {kind}" in err, err
    assert tree(tmp_path) == before  # nothing written, nothing replaced
    assert os.stat(target).st_mode == mode
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_file_under_a_file_and_a_missing_export_output(capsys, beir_dir, tmp_path):
    (tmp_path / "plain").write_text("x")
    code, err = run_cli(capsys, "candidates", "--dataset", beir_dir, "--output", tmp_path / "plain" / "run.trec")
    assert code == 2 and "--output" in err and f"{tmp_path / 'plain'} is not a folder" in err, err
    code, err = run_cli(capsys, "cache", "export-trec", "--cache", tmp_path / "cache", "--teacher", "t")
    assert code == 2 and "needs --output" in err, err
    assert sorted(os.listdir(tmp_path)) == ["plain", "toy"]


def test_the_config_output_of_train_is_checked_too(capsys, beir_dir, tmp_path):
    (tmp_path / "model").write_text("not a folder")
    (tmp_path / "train.yaml").write_text(f"output: {tmp_path / 'model'}\ndataset: {beir_dir}\ncache: {tmp_path / 'c'}\n"
                                         "examples: {teacher: t, negatives: 3}\n")
    code, err = run_cli(capsys, "train", "--config", tmp_path / "train.yaml")
    assert code == 2 and "output of" in err and "not a folder" in err, err
    assert (tmp_path / "model").read_text() == "not a folder"


# the check itself, and the writers' own safety net ---------------------------------------------------------------------
def test_check_output(tmp_path):
    make(str(tmp_path / "fifo"), "fifo")
    make(str(tmp_path / "null"), "device")
    make(str(tmp_path / "dir"), "folder")
    (tmp_path / "file").write_text("x")
    os.symlink(tmp_path / "file", tmp_path / "link")
    assert io.check_output(None) is None
    for path, kind in [("file", "file"), ("link", "file"), ("new/deeper/out.trec", "file"), ("dir", "folder"),
                       ("new/folder", "folder")]:
        assert io.check_output(tmp_path / path, kind) == str(tmp_path / path)
    for path, kind, words in [("fifo", "file", "a fifo"), ("null", "file", "a character device"),
                              ("dir", "file", "a folder"), ("file", "folder", "a file"), ("fifo", "folder", "a fifo"),
                              ("file/out.trec", "file", "is not a folder"), ("file/a/b", "folder", "is not a folder")]:
        with pytest.raises(InputError, match=words):
            io.check_output(tmp_path / path, kind, "--out")
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    assert io.check_output(tmp_path / "dangling", "file")  # a file replaces the link
    with pytest.raises(InputError, match="not a folder"):
        io.check_output(tmp_path / "dangling", "folder")


def test_writers_never_replace_a_device_fifo_or_folder(tmp_path):
    make(str(tmp_path / "fifo"), "fifo")
    make(str(tmp_path / "dir"), "folder")
    (tmp_path / "file").write_text("kept")
    for path in ["fifo", "dir"]:
        with pytest.raises(InputError, match="will not replace"):
            with io.atomic_path(tmp_path / path) as tmp, open(tmp, "w") as f:
                f.write("x")
    for path in ["fifo", "file"]:
        with pytest.raises(InputError, match="will not replace"):
            with io.atomic_dir(tmp_path / path):
                pass
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode) and (tmp_path / "file").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["dir", "fifo", "file"]  # no temporaries left

    # a fifo that appears while the block runs is not replaced either
    with pytest.raises(InputError, match="will not replace a fifo"):
        with io.atomic_path(tmp_path / "late") as tmp:
            open(tmp, "w").close()
            os.mkfifo(tmp_path / "late")
    assert stat.S_ISFIFO(os.lstat(tmp_path / "late").st_mode)

    # a link is replaced, never followed: what it points to stays as it was
    os.symlink(os.devnull, tmp_path / "null")
    with io.atomic_path(tmp_path / "null") as tmp, open(tmp, "w") as f:
        f.write("x")
    assert (tmp_path / "null").read_text() == "x" and stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_normal_output_still_works(capsys, tmp_path):
    (tmp_path / "teacher.tsv").write_text("3.0\t1.0\tq1\td1\td2\n")
    assert main(["cache", "import-margin-mse", "--cache", str(tmp_path / "cache"), "--teacher", "hof",
                 "--input", str(tmp_path / "teacher.tsv")]) == 0
    key = capsys.readouterr().out.split()[1].rstrip(":")  # "teacher hof-<hash of the file>: ..."
    assert key.startswith("hof-")
    (tmp_path / "old.trec").write_text("old\n")
    os.symlink(tmp_path / "old.trec", tmp_path / "out.trec")  # a link to a file is fine: the link is replaced
    assert main(["cache", "export-trec", "--cache", str(tmp_path / "cache"), "--teacher", key,
                 "--output", str(tmp_path / "out.trec")]) == 0
    assert (tmp_path / "out.trec").read_text().split()[:3] == ["q1", "Q0", "d1"]


# --split and dataset names in default output folders ----------------------------------------------------------------
@pytest.mark.parametrize("line", [
    "evaluate --dataset {d} --split {s}",
    "candidates --dataset {d} --split {s} --output run.trec",
    "generate-queries --dataset {d} --generator title --output gen --split {s}",
])
def test_a_split_that_climbs_out_is_refused(capsys, beir_dir, tmp_path, monkeypatch, line):
    split = "../../../escaped"
    (tmp_path / "escaped.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")  # qrels/<split>.tsv exists
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    code, err = run_cli(capsys, *line.format(d=beir_dir, s=split).split())
    assert code == 2 and len(err.splitlines()) == 1 and "--split" in err and "not a safe name" in err, err
    assert tree(tmp_path) == before


def test_default_folders_stay_in_their_root(beir_dir, tmp_path, monkeypatch):
    ds = Dataset("../../x", corpus=None, queries={}, split="a/../../b")
    for cls in INDEXES.values():
        root = str(tmp_path / "indexes")
        folder = os.path.abspath(cls.folder(ds, root=root))
        assert folder.startswith(root + os.sep), folder
        assert os.sep not in cls.run_name(ds) and cls.run_name(ds) not in (".", "..")
    assert safe_part("..") == safe_part(".") == "_" and safe_part("dev.small") == "dev.small"
    monkeypatch.chdir(os.path.join(beir_dir, "qrels"))
    assert load_dataset("..").name == "toy"  # the folder's real name, not ".."


def test_splits_with_dots_still_load(tmp_path):
    folder = tmp_path / "msmarco"
    folder.mkdir()
    (folder / "collection.tsv").write_text("0\tcats purr\n1\tdogs bark\n")
    (folder / "queries.dev.small.tsv").write_text("q1\twhat purrs\n")
    (folder / "qrels.dev.small.tsv").write_text("q1 0 0 1\n")
    ds = load_dataset(str(folder))
    assert ds.split == "dev.small" and INDEXES["bm25"].run_name(ds) == "msmarco-passage-dev.small-bm25"
    with pytest.raises(InputError, match="--split"):
        load_dataset(str(folder), "../msmarco/dev.small")


@pytest.mark.slow
def test_evaluate_into_the_default_folder(capsys, beir_dir, tmp_path, monkeypatch):
    """BM25 (pyserini, Java) into runs/<name>/ under the working folder; a file there stops it before retrieval."""
    monkeypatch.chdir(tmp_path)
    os.makedirs("runs")
    (tmp_path / "runs" / "toy-train-bm25").write_text("a file")
    code, err = run_cli(capsys, "evaluate", "--dataset", beir_dir, "--split", "train")
    assert code == 2 and "runs/toy-train-bm25" in err and "not a folder" in err, err
    assert not os.path.exists("indexes")  # no index was built
    assert main(["evaluate", "--dataset", beir_dir, "--split", "test"]) == 0
    assert os.path.exists(os.path.join("runs", "toy-test-bm25", "metrics.json"))


def test_library_writers_refuse_names_that_climb_out(tmp_path, monkeypatch):
    from irdistill.data import Corpus
    from irdistill.evaluation.suite import dataset_name
    from irdistill.queries import generate_queries
    from irdistill.queries.model_free import SentenceQueries

    (tmp_path / "inner").mkdir()
    monkeypatch.chdir(tmp_path / "inner")
    assert dataset_name("..") == tmp_path.name and dataset_name(".") == "inner"
    corpus = Corpus.from_records([("d1", "", "A first sentence of the passage. And a second one here.")])
    with pytest.raises(InputError, match="split '../x' is not a safe name"):
        generate_queries(corpus, SentenceQueries(), output_folder=str(tmp_path / "g"), split="../x", progress=False)
    assert not (tmp_path / "g").exists() and not (tmp_path / "x.tsv").exists()
