"""GPU check: cross-encoder teacher pairs/s in bf16 at 256 tokens (and the fraction of the GPU's bf16 FLOP limit),
corpus encoding docs/s and bi-encoder training examples/s (Margin-MSE, Hofstätter et al. 2020), in one command.

Needs only torch, sentence-transformers and one model folder (a BERT-like sentence-transformers or Hugging Face
folder, e.g. an fp16 copy of all-MiniLM-L6-v2): the teacher is that encoder with a fresh 1-logit head, so pairs/s
is a teacher's speed, not its quality. Texts are random vocabulary words, long enough that every input fills its
token budget. Each stage runs for ``--seconds`` after a warm-up; the whole check takes under 5 minutes on one GPU.

FLOPs per input (forward) are estimated as ``2 * P * T + 4 * L * T^2 * H``: ``P`` the non-embedding parameters,
``T`` tokens, ``L`` layers, ``H`` hidden size (the second term: attention scores and their weighted sum); a
training step counts 3x the forward. The peak is the GPU's dense bf16 tensor-core rate from a small table of data
sheet figures (``--peak-tflops`` overrides it).

    python benchmarks/gpu_check.py --model MODEL_DIR [--seconds 20] [--write docs/benchmarks.md]
    python benchmarks/gpu_check.py --cpu-smoke    # no GPU: a tiny random model on the CPU, to check the script runs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import torch

# Dense (no sparsity) bf16 tensor-core TFLOP/s from NVIDIA's data sheets; matched in order against the device name.
PEAK_BF16_TFLOPS = [
    ("GH200", 989.0), ("H200 NVL", 835.0), ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0),
    ("H100", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A10", 125.0), ("L40S", 362.0), ("L40", 181.0),
    ("L4", 121.0),
]
SECTION = "gpu-check"


def peak_tflops(name: str) -> float | None:
    return next((tf for key, tf in PEAK_BF16_TFLOPS if key.lower() in name.lower()), None)


def flops_per_input(model: torch.nn.Module, config, tokens: int) -> float:
    """``2 * P * T + 4 * L * T^2 * H`` (forward), ``P`` without the embedding tables (lookups, not matmuls)."""
    embedding = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())
    params = sum(p.numel() for p in model.parameters()) - embedding
    return 2.0 * params * tokens + 4.0 * config.num_hidden_layers * tokens**2 * config.hidden_size


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def rate(step, items: int, seconds: float, device: str, warmup: int = 2) -> float:
    """Items per second of ``step`` (which handles ``items`` inputs) over about ``seconds``, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    sync(device)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        step()
        calls += 1
        if calls % 4 == 0:
            sync(device)
    sync(device)
    return calls * items / (time.perf_counter() - start)


def random_texts(tokenizer, n: int, words: int, seed: int) -> list[str]:
    """``n`` texts of ``words`` random whole-word vocabulary entries (so they fill any token budget up to ``words``)."""
    vocab = [w for w in tokenizer.get_vocab() if w.isalpha() and w.islower() and len(w) > 2]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(vocab), (n, words), generator=g).tolist()
    return [" ".join(vocab[i] for i in row) for row in idx]


def tiny_model(folder: str) -> str:
    """A 2-layer, 64-dim BERT sentence encoder with random weights and a 300-word vocabulary (for --cpu-smoke)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{a}{b}" for a in "abcdefghijklmno" for b in "abcdefghijklmnopqrst"]
    os.makedirs(os.path.join(folder, "bert"), exist_ok=True)
    with open(os.path.join(folder, "bert", "vocab.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    tokenizer = BertTokenizerFast(os.path.join(folder, "bert", "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512)
    BertModel(config).save_pretrained(os.path.join(folder, "bert"))
    tokenizer.save_pretrained(os.path.join(folder, "bert"))
    word = models.Transformer(os.path.join(folder, "bert"), max_seq_length=256)
    SentenceTransformer(modules=[word, models.Pooling(64, "mean"), models.Normalize()], device="cpu").save(
        os.path.join(folder, "st"))
    return os.path.join(folder, "st")


def teacher_check(model_dir: str, device: str, args) -> list[dict]:
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    ce = CrossEncoder(model_dir, num_labels=1, max_length=args.length, device=device)
    ce.to(torch.bfloat16).eval()
    hf, tok = ce.transformers_model, ce.tokenizer
    b = args.teacher_batch
    queries, passages = random_texts(tok, b, 16, 1), random_texts(tok, b, args.length, 2)
    batch = tok(queries, passages, truncation="only_second", max_length=args.length, padding="max_length",
                return_tensors="pt").to(device)
    assert batch["input_ids"].shape == (b, args.length)
    flops = flops_per_input(hf, hf.config, args.length)

    def forward():
        with torch.inference_mode():
            hf(**batch).logits

    pairs = list(zip(queries, passages))

    def predict():
        ce.predict(pairs, batch_size=b, show_progress_bar=False, activation_fn=torch.nn.Identity())

    fwd = rate(forward, b, args.seconds, device)
    e2e = rate(predict, b, args.seconds / 2, device, warmup=1)
    return [{"stage": f"teacher forward, bf16, {args.length} tokens, batch {b}", "per s": fwd, "unit": "pairs",
             "GFLOP each": flops / 1e9, "TFLOP/s": fwd * flops / 1e12},
            {"stage": "teacher CrossEncoder.predict (tokenising included)", "per s": e2e, "unit": "pairs",
             "GFLOP each": flops / 1e9, "TFLOP/s": e2e * flops / 1e12}]


def encode_check(model_dir: str, device: str, args) -> list[dict]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device)
    model.max_seq_length = args.length
    model.to(torch.bfloat16).eval()
    docs = random_texts(model.tokenizer, args.encode_batch * 4, args.length, 3)
    hf = model[0].auto_model
    flops = flops_per_input(hf, hf.config, args.length)

    def encode():
        model.encode(docs, batch_size=args.encode_batch, convert_to_tensor=True, show_progress_bar=False)

    r = rate(encode, len(docs), args.seconds, device, warmup=1)
    return [{"stage": f"corpus encoding, bf16, {args.length} tokens, batch {args.encode_batch}", "per s": r,
             "unit": "docs", "GFLOP each": flops / 1e9, "TFLOP/s": r * flops / 1e12}]


def train_check(model_dir: str, device: str, args) -> list[dict]:
    """AdamW steps of a bi-encoder on (query, positive, negative) with Margin-MSE against random teacher margins,
    bf16 autocast over fp32 weights."""
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(model_dir, device=device).float()
    model.train()
    b, q_len, p_len = args.train_batch, 32, args.train_length
    tok = model.tokenizer

    def features(texts, length):
        f = tok(texts, truncation=True, max_length=length, padding="max_length", return_tensors="pt")
        return {k: v.to(device) for k, v in f.items()}

    q = features(random_texts(tok, b, q_len, 4), q_len)
    pos, neg = (features(random_texts(tok, b, p_len, s), p_len) for s in (5, 6))
    target = torch.randn(b, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            eq, ep, en = (model(dict(f))["sentence_embedding"] for f in (q, pos, neg))
            margin = (eq * ep).sum(-1) - (eq * en).sum(-1)
        loss = torch.nn.functional.mse_loss(margin.float(), target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    hf = model[0].auto_model
    flops = 3 * (flops_per_input(hf, hf.config, q_len) + 2 * flops_per_input(hf, hf.config, p_len))
    r = rate(step, b, args.seconds, device)
    return [{"stage": f"training, Margin-MSE, bf16 autocast, query {q_len} + 2 x {p_len} tokens, batch {b}",
             "per s": r, "unit": "examples", "GFLOP each": flops / 1e9, "TFLOP/s": r * flops / 1e12}]


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    width = {c: max(len(c), *(len(cell(r[c])) for r in rows)) for c in cols}
    line = lambda vals: "  ".join(v.rjust(width[c]) if i else v.ljust(width[c]) for i, (c, v) in enumerate(zip(cols, vals)))
    return "\n".join([line(cols), line(["-" * width[c] for c in cols])] + [line([cell(r[c]) for c in cols]) for r in rows])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (BERT-like; sentence-transformers or Hugging Face)")
    ap.add_argument("--teacher", help="cross-encoder folder (default: --model with a fresh 1-logit head)")
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per stage")
    ap.add_argument("--length", type=int, default=256, help="tokens per teacher pair and per encoded document")
    ap.add_argument("--teacher-batch", type=int, default=256)
    ap.add_argument("--encode-batch", type=int, default=256)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--train-length", type=int, default=256, help="tokens per training passage")
    ap.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak (default: looked up by name)")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny random model, tiny sizes, CPU: checks the script")
    ap.add_argument("--write", help="also write the result into this Markdown file (needs irdistill)")
    args = ap.parse_args(argv)

    gpu = torch.cuda.is_available()
    name = torch.cuda.get_device_name(0) if gpu else "no GPU"
    print(f"device: {name}", flush=True)
    if not gpu and not args.cpu_smoke:
        print("no GPU: nothing to measure (--cpu-smoke runs a tiny model on the CPU to check the script)")
        return 2
    device = "cuda" if gpu and not args.cpu_smoke else "cpu"
    work = tempfile.mkdtemp(prefix="gpu-check-")
    if args.cpu_smoke:
        args.model = tiny_model(work)
        args.seconds, args.length, args.train_length = min(args.seconds, 1.0), 64, 64
        args.teacher_batch = args.encode_batch = args.train_batch = 8
    elif not args.model:
        ap.error("--model is required (or --cpu-smoke)")
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = args.peak_tflops or (peak_tflops(name) if device == "cuda" else None)
    start = time.perf_counter()
    rows = teacher_check(args.teacher or args.model, device, args)
    rows += encode_check(args.model, device, args)
    rows += train_check(args.model, device, args)
    for r in rows:
        r["of peak"] = r["TFLOP/s"] / peak if peak else float("nan")
    total = time.perf_counter() - start

    import sentence_transformers
    import transformers

    mem = f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device == "cuda" else "CPU"
    lines = [f"Machine: {name}, {os.cpu_count()} CPU cores, {platform.system()} {platform.release()}, "
             f"Python {platform.python_version()}",
             f"Versions: torch {torch.__version__} (CUDA {torch.version.cuda}), sentence-transformers "
             f"{sentence_transformers.__version__}, transformers {transformers.__version__}",
             f"Model: {'tiny random BERT (--cpu-smoke)' if args.cpu_smoke else args.model}; peak bf16: "
             + (f"{peak:g} TFLOP/s ({'--peak-tflops' if args.peak_tflops else 'data sheet, by device name'})"
                if peak else "unknown (pass --peak-tflops)")
             + f"; {total:.0f} s in all; {mem}",
             "FLOPs per input: 2 x non-embedding parameters x tokens + 4 x layers x tokens^2 x hidden (forward); "
             "training counts 3x the forward of query + positive + negative."]
    if args.cpu_smoke:
        lines.append("No GPU: this is the --cpu-smoke run (tiny random model on the CPU), which only checks that the "
                     "script runs; it is not a GPU measurement.")
    text = "\n".join(lines + ["", "```", table(rows), "```"])
    print(text)
    if args.write:
        from irdistill.experiment import write_section

        flag = " --cpu-smoke" if args.cpu_smoke else " --model MODEL_DIR"
        write_section(args.write, SECTION, f"Command: `python benchmarks/gpu_check.py{flag} --write {args.write}`\n\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
