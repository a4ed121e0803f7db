import json
import os

import pytest

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets"))

DOCS = {
    "d1": ("Cats", "Cats are small domesticated felines that purr."),
    "d2": ("Dogs", "Dogs are loyal animals that bark at strangers."),
    "d3": ("Python", "Python is a programming language with dynamic typing."),
    "d4": ("Rust", "Rust is a systems programming language focused on memory safety."),
    "d5": ("Tea", "Green tea is brewed from the leaves of Camellia sinensis."),
    "d6": ("Coffee", "Coffee beans are roasted seeds of the coffee plant."),
}
QUERIES = {"q1": "which animal purrs", "q2": "memory safe programming language", "q3": "roasted coffee seeds",
           "q4": "an unjudged query"}
QRELS = {"test": [("q1", "d1", 1), ("q2", "d4", 2), ("q2", "d3", 1), ("q3", "d6", 1)], "train": [("q4", "d5", 1)]}


def random_collection(documents: int, queries: int, doc_words: int, vocabulary: int, query_words: int = 3,
                      prefix: str = "w", seed: int = 0) -> tuple[dict, dict]:
    """Documents ``d<i>`` and queries ``q<i>`` of random words from ``<prefix>0 .. <prefix><vocabulary-1>``: every
    query shares words with many documents, so a retriever or teacher finds candidates for all of them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = [f"{prefix}{i}" for i in range(vocabulary)]
    docs = {f"d{i}": ("", " ".join(rng.choice(words, doc_words))) for i in range(documents)}
    return docs, {f"q{i}": " ".join(rng.choice(words, query_words)) for i in range(queries)}


def write_beir(folder, docs=DOCS, queries=QUERIES, qrels=QRELS):
    os.makedirs(os.path.join(folder, "qrels"), exist_ok=True)
    with open(os.path.join(folder, "corpus.jsonl"), "w") as f:
        for d, (title, text) in docs.items():
            f.write(json.dumps({"_id": d, "title": title, "text": text}) + "\n")
    with open(os.path.join(folder, "queries.jsonl"), "w") as f:
        for q, text in queries.items():
            f.write(json.dumps({"_id": q, "text": text}) + "\n")
    for split, rows in qrels.items():
        with open(os.path.join(folder, "qrels", f"{split}.tsv"), "w") as f:
            f.write("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in rows))
    return str(folder)


@pytest.fixture
def beir_dir(tmp_path):
    return write_beir(tmp_path / "toy")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, 32-dim BERT sentence encoder with random weights, built from a config (no download)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from irdistill.models import packaged_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(packaged_path("all-MiniLM-L6-v2"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder / "bert")
    tokenizer.save_pretrained(folder / "bert")
    word = models.Transformer(str(folder / "bert"), max_seq_length=64)
    model = SentenceTransformer(modules=[word, models.Pooling(32, "mean"), models.Normalize()], device="cpu")
    model.save(str(folder / "st"))
    return str(folder / "st")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(tiny_model_dir, device="cpu")


def pytest_collection_finish(session):
    """Move what the imports made so far out of the garbage collector's sight (``gc.freeze``): the trainer's
    ``gc.collect()`` after every training (accelerate's ``free_memory``) otherwise walks all of torch's and
    transformers' objects each time, a third of a second per training in this process."""
    import gc

    if len(session.items) > 20:  # a long run: import the stack once up front, then freeze it
        import sentence_transformers  # noqa: F401
    gc.freeze()


def pytest_collection_modifyitems(session, config, items):
    """Longest first: files with slow tests before the others, SciFact's (an encoding of its corpus, minutes) first
    of all, so that with two processes (``-n 2 --dist loadfile``) neither waits alone on a long file at the end."""
    def rank(item):
        if item.path.name == "test_scifact.py":
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: the order within each rank stays pytest's
