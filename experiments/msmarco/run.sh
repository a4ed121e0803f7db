#!/usr/bin/env bash
# The MS MARCO passage recipe, from the CLI: BM25 candidates for the training queries, a cross-encoder teacher scored
# into the cache, a Margin-MSE bi-encoder student, then MRR@10 / R@1000 on dev/small and nDCG@10 on TREC DL 2019/2020.
#
#   bash experiments/msmarco/run.sh                         # MS MARCO through ir_datasets ids (downloaded on first use)
#   MSMARCO=path/to/folder bash experiments/msmarco/run.sh  # or an MS MARCO folder: collection.tsv,
#                                                           # queries.<split>.tsv, qrels.<split>.tsv per split
# Settings (environment): QUERIES training queries (a seeded sample of the judged ones, default 50000), DEPTH candidates
# per query (100), TEACHER (a teacher spec), CONFIG (the training YAML), NAME (folders under runs/, cache/, models/).
# Every step is resumable: rerun the script after a kill and finished work is skipped (cache, checkpoints, indexes).
set -euo pipefail
SOURCE=${MSMARCO:-msmarco-passage}
QUERIES=${QUERIES:-50000}
DEPTH=${DEPTH:-100}
TEACHER=${TEACHER:-cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2}
CONFIG=${CONFIG:-experiments/msmarco/margin-mse.yaml}
NAME=${NAME:-msmarco}
IRDISTILL=${IRDISTILL:-irdistill}
if [ -d "$SOURCE" ]; then  # an MS MARCO folder names its splits by file
  TRAIN=train; DEV=dev.small; DL19=trec-dl-2019; DL20=trec-dl-2020
else                        # ir_datasets ids
  TRAIN=train/judged; DEV=dev/small; DL19=trec-dl-2019/judged; DL20=trec-dl-2020/judged
fi

$IRDISTILL candidates --dataset "$SOURCE" --split "$TRAIN" --retriever bm25 -k "$DEPTH" --add-positives \
  --sample-queries "$QUERIES" --output "runs/$NAME-train-bm25.parquet"
KEY=$($IRDISTILL score --teacher "$TEACHER" --run "runs/$NAME-train-bm25.parquet" --dataset "$SOURCE" --split "$TRAIN" \
  --cache "cache/$NAME" | sed -n 's/^teacher \([^:]*\): .*/\1/p')
MODEL=$($IRDISTILL train --config "$CONFIG" --set "dataset=$SOURCE" --set "split=$TRAIN" --set "cache=cache/$NAME" \
  --set "output=models/$NAME-student" --set "examples.teacher=$KEY" | sed -n 's/^model: //p')
$IRDISTILL evaluate --dataset "$SOURCE" --split "$DEV" --retriever dense --model "$MODEL" -k 1000 \
  --metrics mrr@10,recall@1000,ndcg@10 --output "runs/$NAME-dev"
for split in "$DL19" "$DL20"; do
  $IRDISTILL evaluate --dataset "$SOURCE" --split "$split" --retriever dense --model "$MODEL" -k 1000 \
    --metrics ndcg@10,recall@1000 --output "runs/$NAME-$(echo "$split" | tr '/.' '--')"
done
