"""Embedding distillation: the student's embeddings regress a teacher's, alone or beside the score losses."""

import json

import numpy as np
import pytest

from irdistill.data import load_dataset
from irdistill.errors import InputError
from irdistill.training import train
from irdistill.training.embedding_distill import EmbeddingConfig, pairs, train_embeddings
from test_training import cached, config  # noqa: F401 (a fixture)


def tiny(folder, dim: int, seed: int) -> str:
    """A 2-layer BERT sentence encoder of ``dim`` dimensions with random weights (``seed``)."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irdistill.models import packaged_path

    tokenizer = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=dim, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=2 * dim, max_position_embeddings=128)).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=64)
    SentenceTransformer(modules=[word, models.Pooling(dim, "mean"), models.Normalize()], device="cpu").save(str(folder / "st"))
    return str(folder / "st")


@pytest.fixture
def translated(tmp_path):
    """The toy collection with an English view ("en") of every passage."""
    from conftest import DOCS, write_beir

    folder = write_beir(tmp_path / "de")
    with open(f"{folder}/corpus.en.jsonl", "w") as f:
        for d, (title, text) in DOCS.items():
            f.write(json.dumps({"_id": d, "title": title, "text": text.upper()}) + "\n")
    return load_dataset(folder, "test")


def test_pairs_from_a_collection_its_other_view_and_its_sentences(translated):
    plain = pairs(translated, EmbeddingConfig(teacher={}))
    assert len(plain) == 6 and all(s == t for s, t in plain)
    crossed = pairs(translated, EmbeddingConfig(teacher={}, teacher_view="en"))
    texts = translated.corpus.texts(["d1"])[0], translated.view("en").texts(["d1"])[0]
    assert texts in crossed and (texts[1], texts[1]) in crossed and len(crossed) == 12
    assert len(pairs(translated, EmbeddingConfig(teacher={}, teacher_view="en", both_views=False))) == 6


@pytest.mark.parametrize("bad, words", [({"teacher": "bm25"}, "gives no embeddings"),
                                        ({"teacher": "bi-encoder:m", "metric": "dot"}, "metric"),
                                        ({"teacher": "bi-encoder:m", "weight": 0}, "weight"),
                                        ({"teacher": "bi-encoder:m", "views": "en"}, "unknown embeddings option"),
                                        ({"metric": "cosine"}, "a mapping with a teacher")])
def test_bad_embedding_options_are_one_line(cached, bad, words, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    with pytest.raises(InputError, match=words):
        config(folder, cache, tid, tmp_path / "out", "bi-encoder", "m", embeddings=bad)
    with pytest.raises(InputError, match="no single embedding"):
        config(folder, cache, tid, tmp_path / "out", "cross-encoder", "m", embeddings={"teacher": "bi-encoder:m"})


def cosine_to(student: str, teacher: str, texts: list[str]) -> float:
    from sentence_transformers import SentenceTransformer

    s, t = (SentenceTransformer(m, device="cpu").encode(texts, normalize_embeddings=True) for m in (student, teacher))
    return float(np.mean(np.sum(s * t, axis=1)))


def test_the_student_moves_toward_the_teacher(translated, tmp_path):
    student, teacher = tiny(tmp_path / "s", 32, 0), tiny(tmp_path / "t", 32, 1)
    cfg = EmbeddingConfig(teacher={"kind": "bi-encoder", "model": teacher}, sentences=True)
    final = train_embeddings(student, translated, cfg, str(tmp_path / "out"), epochs=20, batch_size=4,
                             learning_rate=5e-3, progress=False)
    texts = translated.corpus.texts(list(translated.corpus.ids))
    assert cosine_to(final, teacher, texts) > cosine_to(student, teacher, texts) + 0.1
    again = train_embeddings(student, translated, cfg, str(tmp_path / "out"), epochs=20, batch_size=4,
                             learning_rate=5e-3, progress=False)
    assert again == final  # the same run: read back, not trained again
    with pytest.raises(InputError, match=r"another config \(epochs 20 -> 3\)"):
        train_embeddings(student, translated, cfg, str(tmp_path / "out"), epochs=3, batch_size=4, learning_rate=5e-3,
                         progress=False)


def test_beside_score_losses_and_through_a_projection(cached, tmp_path):  # noqa: F811
    folder, ds, cache, tid = cached
    student, teacher = tiny(tmp_path / "s", 32, 0), tiny(tmp_path / "t", 16, 1)  # 32 -> 16: a projection on the loss
    cfg = config(folder, cache, tid, tmp_path / "out", "bi-encoder", student,
                 loss=[{"name": "infonce"}, {"name": "listwise-kl"}],
                 embeddings={"teacher": {"kind": "bi-encoder", "model": teacher}, "weight": 0.5})
    final = train(cfg, progress=False)
    logged = [json.loads(line) for line in open(tmp_path / "out" / "loss.jsonl")]
    assert any("loss" in h for h in logged)
    assert json.load(open(f"{final}/irdistill.json"))["embeddings"]["weight"] == 0.5
    record = json.load(open(tmp_path / "out" / "training.json"))
    assert record["config"]["embeddings"]["teacher"] == {"kind": "bi-encoder", "model": teacher}


def test_aligned_targets_live_in_the_students_space(translated, tmp_path):
    """``align`` maps the teacher's vectors into the student's space: a student that is the teacher rotated gets its
    own vectors back as targets (so queries, never trained, stay comparable), and the sizes may differ."""
    from sentence_transformers import SentenceTransformer

    from irdistill.training.embedding_distill import targets

    student = SentenceTransformer(tiny(tmp_path / "s", 32, 0), device="cpu")
    examples = pairs(translated, EmbeddingConfig(teacher={}, teacher_view="en", sentences=True))
    own = student.encode([t for _, t in examples])
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(32, 32)))[0]
    cfg = EmbeddingConfig(teacher={}, align="orthogonal")
    assert np.allclose(targets(student, examples, own @ rotation, cfg), own, atol=1e-4)
    wide = np.random.default_rng(1).normal(size=(len(examples), 48)).astype(np.float32)
    assert targets(student, examples, wide, EmbeddingConfig(teacher={}, align="linear")).shape == (len(examples), 32)
    assert targets(student, examples, wide, EmbeddingConfig(teacher={})) is wide
    with pytest.raises(InputError, match="embeddings.align"):
        EmbeddingConfig.from_dict({"teacher": "bi-encoder:m", "align": "affine"})
