#!/usr/bin/env bash
# usage: ft.sh NAME LR EPOCHS [train options...]  (in /tmp/ft)
set -euo pipefail
ROOT=${ROOT:-/work/main}; T5CLS="node $ROOT/bin/t5cls.js"; SH=/work/shared
cd /tmp/ft
[ -d datasets/emotion_processed ] || $T5CLS load-dataset --from $SH/data/tweeteval/emotion --out datasets/emotion_processed >/dev/null
name=$1 lr=$2 ep=$3; shift 3
s=$(date +%s)
$T5CLS train "$@" --data-dir datasets/emotion_processed --use-adafactor --learning-rate $lr --epochs $ep --seed 42 \
  --save-weights-path w-$name --logs-dir l-$name --runs-dir r-$name > t-$name.out 2>&1
best=$(sed -n 's/^best dev macro-F1 [0-9.]*: \(.*\)$/\1/p' t-$name.out | tail -1)
$T5CLS test --weights "$best" --data-dir datasets/emotion_processed --decode rank --output-dir test-$name --quiet > e-$name.out 2>&1
e=$(date +%s)
python3 -c "import json;m=json.load(open('test-$name/metrics.json'));print('$name', 'test F1 %.4f acc %.4f'%(m['macro_f1'],m['accuracy']), '$((e-s)) s')"
grep -o 'best dev macro-F1 [0-9.]*' t-$name.out
