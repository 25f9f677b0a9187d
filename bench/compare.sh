#!/usr/bin/env bash
# Side by side, in one run: our configuration vs Rasa's default recommended
# configuration (bench/default_config.yml) trained on the same data.
#   NLU accuracy on the held-out set, training time and peak memory,
#   REST latency/capacity (sequential, 50-message conversation, 20 clients x 30 s).
# "ours" is the product as `make run` serves it (models/ordos.tar.gz, trained by
# scripts/train.sh, our REST channel and serving fixes); "default" is stock Rasa:
# the default config, Rasa's own REST channel, nothing of rasa_addons loaded.
# Figures go to stdout and build/bench/*.json. Takes about 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export VAR_DIR="$PWD/build/bench/var"; mkdir -p "$VAR_DIR" build/bench
export TRACKER_DB_URL="sqlite:///$VAR_DIR/tracker.db"
PY=.venv/bin/python; RASA=.venv/bin/rasa

train() {  # name config
  if [ ! -f "build/bench/$1.tar.gz" ]; then
    /usr/bin/time -f "[$1] rasa train: %e s wall, %M KB peak RSS" \
      $RASA train --config "$2" --domain domain.yml --data data --out build/bench --fixed-model-name "$1" \
      --quiet 2>&1 | grep "rasa train:" | tee "build/bench/$1.train.txt"
  else
    cat "build/bench/$1.train.txt" 2>/dev/null || true
  fi
}
$PY -m bot.build >/dev/null
bash scripts/train.sh
cp models/ordos.tar.gz build/bench/ours.tar.gz
train default bench/default_config.yml
printf 'rest:\n' > build/bench/stock_credentials.yml
sed 's/type: rasa_addons\.tracker_store\..*/type: SQL/' endpoints.yml > build/bench/stock_endpoints.yml

for name in ours default; do
  echo "== NLU held-out: $name"
  $PY bench/nlu_eval.py --model "build/bench/$name.tar.gz" --json "build/bench/$name.nlu.json" | sed -n 1,5p
done

$RASA run actions --actions actions.actions --port 5055 >"$VAR_DIR/actions.log" 2>&1 &
ACTIONS=$!
trap 'kill $ACTIONS 2>/dev/null || true' EXIT
for name in ours default; do
  rm -f "$VAR_DIR/tracker.db"
  credentials=credentials.yml endpoints=endpoints.yml
  [ "$name" = default ] && credentials=build/bench/stock_credentials.yml endpoints=build/bench/stock_endpoints.yml
  $RASA run --model "build/bench/$name.tar.gz" --endpoints "$endpoints" --credentials "$credentials" \
    --port 5006 >"$VAR_DIR/rasa-$name.log" 2>&1 &
  RASA_PID=$!
  for _ in $(seq 1 240); do curl -sf http://127.0.0.1:5006/ >/dev/null && break; sleep 1; done
  ps -o rss= -p $RASA_PID | awk -v n=$name '{printf "[%s] rasa run resident memory after start: %.0f MB\n", n, $1/1024}'
  $PY bench/rest_bench.py --url http://127.0.0.1:5006 --label "$name" --json "build/bench/$name.rest.json"
  ps -o rss= -p $RASA_PID | awk -v n=$name '{printf "[%s] rasa run resident memory after load: %.0f MB\n", n, $1/1024}'
  kill $RASA_PID; wait $RASA_PID 2>/dev/null || true
done
$PY - <<'PY'
import json
o = {k: json.load(open(f"build/bench/ours.{k}.json")) for k in ("nlu", "rest")}
d = {k: json.load(open(f"build/bench/default.{k}.json")) for k in ("nlu", "rest")}
print("== ratios (ours / default)")
print(f"intent micro-F1: {o['nlu']['intent_micro_f1']:.3f} / {d['nlu']['intent_micro_f1']:.3f} "
      f"= {o['nlu']['intent_micro_f1'] / d['nlu']['intent_micro_f1']:.2f}")
print(f"right answer rate: {o['nlu']['right_answer_rate']:.3f} / {d['nlu']['right_answer_rate']:.3f}")
print(f"closed-loop msg/s: {o['rest']['closed_loop']['msgs_per_s']:.1f} / {d['rest']['closed_loop']['msgs_per_s']:.1f} "
      f"= {o['rest']['closed_loop']['msgs_per_s'] / d['rest']['closed_loop']['msgs_per_s']:.2f}x")
oc, dc = o["rest"]["capacity_msgs_per_s_p95_under_500ms"], d["rest"]["capacity_msgs_per_s_p95_under_500ms"]
print(f"capacity at p95 < 500 ms: {oc:.1f} / {dc:.1f} msg/s = {oc / dc if dc else float('inf'):.2f}x")
print(f"sequential p95: {o['rest']['sequential']['p95_ms']:.0f} / {d['rest']['sequential']['p95_ms']:.0f} ms")
PY
