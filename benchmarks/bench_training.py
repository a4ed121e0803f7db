"""Training throughput (examples/s): an irdistill Margin-MSE bi-encoder run beside plain sentence-transformers
training with its own MarginMSELoss on the same examples, in one run.

Examples: SciFact train queries, BM25 top-100 candidates (plus positives) scored by the BM25 teacher, 1 positive + 7
negatives each, 128-token texts, batch 16, all-MiniLM-L6-v2.

    python benchmarks/bench_training.py [--steps 8] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from irdistill.cache import ScoreCache
from irdistill.data import load_dataset
from irdistill.index.base import candidates
from irdistill.experiment import publish_benchmark
from irdistill.teachers import build_teacher, score_run
from irdistill.training import ExampleConfig, TrainConfig, as_hf_dataset, build_examples, train

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class Clock:
    """A trainer callback timing the optimisation steps after the first (warm-up) one."""

    def __init__(self):
        from transformers import TrainerCallback

        outer = self

        class CB(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                if state.global_step == 1:
                    outer.start = time.perf_counter()
                outer.end, outer.steps = time.perf_counter(), state.global_step - 1

        self.callback = CB()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=os.path.join(HERE, "..", "..", "shared", "datasets", "scifact"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--write")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-train-")
    ds = load_dataset(args.dataset, "train")
    run = candidates(ds, "bm25", k=100, positives=True)
    teacher = build_teacher({"kind": "bm25"}, ds)
    cache = ScoreCache(os.path.join(work, "cache"))
    key = score_run(teacher, run, ds, cache, progress=False).key
    common = {"max_seq_length": 128, "batch_size": args.batch_size, "max_steps": args.steps + 1, "save_steps": 10_000,
              "logging_steps": 1, "learning_rate": 2e-5, "seed": 42, "dataset": args.dataset, "cache": cache.folder,
              "model": MODEL, "examples": {"teacher": key, "negatives": 7}}

    rows = []
    # plain sentence-transformers: the same examples (texts resolved the same way), its own MarginMSELoss
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss

    from irdistill.models import resolve_model

    examples = build_examples(ds, cache, ExampleConfig(teacher=key, negatives=7))
    model = st.SentenceTransformer(resolve_model(MODEL), device="cpu")
    model.max_seq_length = 128
    clock = Clock()
    targs = st.SentenceTransformerTrainingArguments(output_dir=os.path.join(work, "plain"), max_steps=args.steps + 1,
                                                    per_device_train_batch_size=args.batch_size, learning_rate=2e-5,
                                                    seed=42, save_strategy="no", report_to=[], disable_tqdm=True,
                                                    dataloader_pin_memory=False)
    st.SentenceTransformerTrainer(model=model, args=targs, train_dataset=as_hf_dataset(examples, ds),
                                  loss=MarginMSELoss(model), callbacks=[clock.callback]).train()
    base = clock.steps * args.batch_size / (clock.end - clock.start)
    rows.append({"trainer": "sentence-transformers + its MarginMSELoss (baseline)", "examples/s": base, "ratio": 1.0})

    clock = Clock()
    train(TrainConfig.from_dict({**common, "output": os.path.join(work, "ours"), "loss": "margin-mse"}),
          callbacks=[clock.callback], progress=False)
    ours = clock.steps * args.batch_size / (clock.end - clock.start)
    rows.append({"trainer": "irdistill train, margin-mse", "examples/s": ours, "ratio": ours / base})

    publish_benchmark("bench-training", "benchmarks/bench_training.py",
                      ("irdistill", "torch", "sentence-transformers", "transformers"),
                      [f"{args.steps} timed steps after one warm-up step; batch {args.batch_size} examples of 9 texts "
                       "(query, positive, 7 negatives), max 128 tokens; the same examples for both"], rows, args.write)


if __name__ == "__main__":
    main()
