#!/usr/bin/env bash
# Train the Rasa model when it is missing or anything it is built from changed.
#
# Rasa caches trained components by the fingerprint of their config and data,
# not their code; so the config used for training (build/config.yml) carries,
# for each of our components, a fingerprint of its code, the project modules it
# imports and (where it reads them) knowledge/ (bot/fingerprint.py): a change
# there retrains that component and those after it; serving code retrains
# nothing. The cache lives outside the checkout, so a fresh clone on the same
# machine reuses what an identical earlier training produced.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export RASA_CACHE_DIRECTORY="${RASA_CACHE_DIRECTORY:-$HOME/.cache/ordos-fertility-assistant/rasa}"
mkdir -p "$RASA_CACHE_DIRECTORY" build
model=models/ordos.tar.gz
.venv/bin/python -c 'from pathlib import Path; from bot.fingerprint import write_training_config
write_training_config(Path("config.yml"), Path("build/config.yml"))'
inputs=(build/config.yml domain.yml data build/jieba)
stamp=$(find "${inputs[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$model" ] && [ -f models/.stamp ] && [ "$(cat models/.stamp)" = "$stamp" ]; then
  echo "model is up to date ($model)"
  exit 0
fi
echo "training the Rasa model (about a minute on 2 cores; less when cached)..."
.venv/bin/rasa train --config build/config.yml --domain domain.yml --data data --out models \
  --fixed-model-name ordos --quiet
echo "$stamp" > models/.stamp
