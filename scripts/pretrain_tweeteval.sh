#!/usr/bin/env bash
# Does pretraining help? A T5 is pretrained from scratch (span corruption) on the unlabeled tweets of the other
# TweetEval tasks (every task folder beside TASK: their train, val and test texts) and TASK's train texts without
# their labels, never a text of TASK's validation or test split (such lines are dropped from the corpus); then it
# is fine-tuned on TASK, and a second T5 of the same shape is fine-tuned from a random start with the same budget.
# Both are tested on TASK's test split with rank decoding; the script prints both test macro-F1s and the times.
# Not run in CI. Usage: bash scripts/pretrain_tweeteval.sh
# Both stages use Adafactor scaled by each parameter's RMS (--adafactor-scale-parameter), as T5 was trained; without
# it a model from a random start barely moves its embeddings at these learning rates.
# Env: WORK (run folder, default a new temp folder), SHARED (default ../shared beside the project), TASK (default
#      emotion), MODEL_CONFIG (a named shape or a config.json, default mini), PRETRAIN_EPOCHS (default 10),
#      PRETRAIN_MINUTES (stop pretraining after this many minutes, default none), PRETRAIN_LR (default 1e-2),
#      EPOCHS (fine-tuning, default 10), FINETUNE_LR (default 1e-2), SEED (default 42), PRETRAINED (a pretrained
#      checkpoint to fine-tune instead of pretraining again).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$ROOT/../shared}"
WORK="${WORK:-$(mktemp -d -t t5cls-pretrain-XXXX)}"
T5CLS="node $ROOT/bin/t5cls.js"
TWEETEVAL="$SHARED/data/tweeteval"
TASK="${TASK:-emotion}"
TOKENIZER="$SHARED/models/t5-small-tokenizer"
SHAPE="${MODEL_CONFIG:-mini}"
SEED="${SEED:-42}"
mkdir -p "$WORK" && cd "$WORK"
echo "run folder: $WORK"
start=$(date +%s)
$T5CLS load-dataset --from "$TWEETEVAL/$TASK" --out "datasets/${TASK}_processed"

# 1. Pretrain on the other tasks' tweets (or take the checkpoint PRETRAINED names, from an earlier run).
if [ -n "${PRETRAINED:-}" ]; then
  pretrained="$PRETRAINED"
else
  mkdir -p corpus
  cat "$TWEETEVAL/$TASK"/val_text.txt "$TWEETEVAL/$TASK"/test_text.txt > corpus/held_out
  sources=()
  keep() { # the lines of $1 that are no held-out text, as corpus/$2
    grep -vxF -f corpus/held_out "$1" > "corpus/$2" || true
    sources+=(--from "corpus/$2")
  }
  for dir in "$TWEETEVAL"/*/; do
    task=$(basename "$dir")
    [ "$task" = "$TASK" ] && continue
    for f in "$dir"*_text.txt; do keep "$f" "${task}_$(basename "$f")"; done
  done
  keep "$TWEETEVAL/$TASK/train_text.txt" "${TASK}_train_text.txt"
  limit=()
  if [ -n "${PRETRAIN_MINUTES:-}" ]; then limit=(--max-minutes "$PRETRAIN_MINUTES"); fi
  $T5CLS pretrain "${sources[@]}" --init random --model-config "$SHAPE" --tokenizer "$TOKENIZER" --max-source-length 64 \
    --batch-size 64 --epochs "${PRETRAIN_EPOCHS:-10}" "${limit[@]}" --adafactor-scale-parameter --learning-rate "${PRETRAIN_LR:-1e-2}" \
    --lr-warmup-steps 100 \
    --eval-every-steps 250 --seed "$SEED" 2>&1 | tee pretrain.out
  pretrained=$(sed -n 's/^saved checkpoint \(.*\) (step [0-9]*).*/\1/p' pretrain.out | tail -1)
fi
pretrained_at=$(date +%s)

# 2. Fine-tune on TASK from the pretrained model and from a random one, with the same budget.
finetune() {
  local name=$1; shift
  $T5CLS train "$@" --data-dir "datasets/${TASK}_processed" --prefix-text "tweet_eval ${TASK} sentence: " \
    --use-adafactor --adafactor-scale-parameter \
    --learning-rate "${FINETUNE_LR:-1e-2}" --epochs "${EPOCHS:-10}" \
    --seed "$SEED" --save-weights-path "weights-$name" --logs-dir "logs-$name" --runs-dir "runs-$name" 2>&1 | tee "train-$name.out"
  local best
  best=$(sed -n 's/^best dev macro-F1 [0-9.]*: \(.*\)$/\1/p' "train-$name.out" | tail -1)
  $T5CLS test --weights "$best" --data-dir "datasets/${TASK}_processed" --decode rank --output-dir "test-$name" 2>&1 | tee "test-$name.out"
}
finetune pretrained --model "$pretrained"
finetuned_at=$(date +%s)
finetune scratch --init random --model-config "$SHAPE" --tokenizer "$TOKENIZER"
end=$(date +%s)
python3 - "$WORK" "$TASK" "$((pretrained_at - start))" "$((finetuned_at - pretrained_at))" "$((end - finetuned_at))" <<'PY' || true
import json, sys
work, task, pre, tune, scratch = sys.argv[1:]
for name in ('scratch', 'pretrained'):
    m = json.load(open(f"{work}/test-{name}/metrics.json"))
    print(f"{task} {name:>10}: test macro-F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}")
print(f"pretraining {pre} s, fine-tuning the pretrained model {tune} s (pretrained path {int(pre) + int(tune)} s); scratch {scratch} s")
PY
