#!/usr/bin/env bash
# DiSCo on TREC CAsT (Lupart et al., 2024): LLMs rewrite each turn of the training conversations into a self-contained
# query (one query view per LLM); one teacher per rewrite view scores the candidates, the teachers fused as ensembles
# are; a SPLADE student learns those scores while reading the whole conversation; then nDCG@3 / nDCG@10 / R@100 on
# the test conversations, the student reading the conversation, beside BM25 on the raw turns, on the conversation and
# on the manual rewrites.
#
#   bash experiments/cast/run.sh                        # TREC CAsT through ir_datasets: trains on trec-cast/v1/2019/judged,
#                                                       # tests on trec-cast/v1/2020/judged (its files in $IR_DATASETS_HOME)
#   CAST=path/to/folder bash experiments/cast/run.sh    # or a BEIR folder: queries.jsonl (the turns as said),
#                                                       # queries.conversation.jsonl, queries.manual.jsonl, qrels/{train,test}.tsv
# Settings (environment): REWRITERS (space-separated LLMs, one view llm-1, llm-2.. each; default the packaged
# SmolLM2-135M), REWRITE_OPTIONS (backend options for every rewriter, e.g. "endpoint=http://host:8000"), TEACHER
# (kind:model each view's teacher is), CONFIG (the training YAML), DEPTH (candidates per turn), NAME.
# Every step is resumable: rerun after a kill and finished work is skipped (rewrites, cache, checkpoints, indexes).
set -euo pipefail
SOURCE=${CAST:-trec-cast/v1}
REWRITERS=${REWRITERS:-smollm2-135m-instruct-gguf}
REWRITE_OPTIONS=${REWRITE_OPTIONS:-}
TEACHER=${TEACHER:-cross-encoder:cross-encoder/ms-marco-MiniLM-L6-v2}
CONFIG=${CONFIG:-experiments/cast/splade.yaml}
DEPTH=${DEPTH:-100}
NAME=${NAME:-cast}
IRDISTILL=${IRDISTILL:-irdistill}
if [ -d "$SOURCE" ]; then TRAIN=train; TEST=test; else TRAIN=2019/judged; TEST=2020/judged; fi
mkdir -p rewrites runs

VIEWS=(); MEMBERS=(); i=0
for llm in $REWRITERS; do
  i=$((i + 1))
  OPTS=(); for o in $REWRITE_OPTIONS; do OPTS+=(--option "$o"); done
  $IRDISTILL rewrite --dataset "$SOURCE" --split "$TRAIN" --llm "$llm" "${OPTS[@]}" \
    --output "rewrites/$NAME-llm-$i.jsonl"
  VIEWS+=(--query-view-file "llm-$i=rewrites/$NAME-llm-$i.jsonl")
  MEMBERS+=("{\"kind\": \"${TEACHER%%:*}\", \"model\": \"${TEACHER#*:}\", \"query_view\": \"llm-$i\"}")
done
# one teacher per view; several are fused (z-scored, equal weights)
if [ "$i" -eq 1 ]; then
  echo "${MEMBERS[0]}" > "runs/$NAME-teacher.json"
else
  WEIGHTS=$(python3 -c "import sys; n = int(sys.argv[1]); print(', '.join([str(1 / n)] * n))" "$i")
  (IFS=,; echo "{\"kind\": \"ensemble\", \"members\": [${MEMBERS[*]}], \"weights\": [$WEIGHTS]}") > "runs/$NAME-teacher.json"
fi

# candidates: BM25 over the first LLM's rewrites, the judged passages added
$IRDISTILL candidates --dataset "$SOURCE" --split "$TRAIN" "${VIEWS[@]}" --query-view llm-1 --retriever bm25 \
  -k "$DEPTH" --add-positives --output "runs/$NAME-train-bm25.parquet"
KEY=$($IRDISTILL score --teacher "runs/$NAME-teacher.json" --run "runs/$NAME-train-bm25.parquet" --dataset "$SOURCE" \
  --split "$TRAIN" "${VIEWS[@]}" --cache "cache/$NAME" | sed -n 's/^teacher \([^:]*\): .*/\1/p')
MODEL=$($IRDISTILL train --config "$CONFIG" --set "dataset=$SOURCE" --set "split=$TRAIN" --set "cache=cache/$NAME" \
  --set "output=models/$NAME-splade" --set "examples.teacher=$KEY" | sed -n 's/^model: //p')

$IRDISTILL evaluate --dataset "$SOURCE" --split "$TEST" --query-view conversation --retriever splade --model "$MODEL" \
  --metrics ndcg@3,ndcg@10,recall@100 --output "runs/$NAME-student"
for view in raw conversation manual; do
  SET=(); [ "$view" = raw ] || SET=(--query-view "$view")
  $IRDISTILL evaluate --dataset "$SOURCE" --split "$TEST" "${SET[@]}" --retriever bm25 \
    --metrics ndcg@3,ndcg@10,recall@100 --output "runs/$NAME-bm25-$view"
done
