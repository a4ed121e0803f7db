#!/usr/bin/env bash
# Ensemble teacher on SciFact: BM25 top-100 candidates re-ranked by BM25 + all-MiniLM-L6-v2 (weights fit on train).
# Run from the repository root with the venv active:  bash experiments/teachers/scifact_ensemble.sh
# A second run scores 0 pairs (everything is in cache/scifact). Writes the table into docs/results.md.
set -euo pipefail
D=${SCIFACT:-../shared/datasets/scifact}
irdistill candidates --dataset "$D" --split train --retriever bm25 -k 100 --output runs/scifact-train-bm25-100.parquet
irdistill candidates --dataset "$D" --split test --retriever bm25 -k 100 --output runs/scifact-test-bm25-100.parquet
for t in bm25 bi-encoder:sentence-transformers/all-MiniLM-L6-v2 experiments/teachers/ensemble-bm25-minilm.yaml; do
  name=$(basename "${t%.yaml}" | tr ':/' '__')
  irdistill score --teacher "$t" --run runs/scifact-test-bm25-100.parquet --dataset "$D" --split test \
    --cache cache/scifact --output "runs/scifact-test-rerank-$name.parquet"
  irdistill evaluate --dataset "$D" --split test --run "runs/scifact-test-rerank-$name.parquet" \
    --metrics ndcg@10,recall@100 --output "runs/scifact-test-rerank-$name"
done
python experiments/teachers/table.py --write docs/results.md
