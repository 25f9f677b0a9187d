#!/usr/bin/env bash
# Train the Rasa model when it is missing or anything it is built from changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
model=models/ordos.tar.gz
inputs=(config.yml domain.yml data knowledge build/jieba rasa_addons bot/search.py bot/text.py bot/lexicon.py)
stamp=$(find "${inputs[@]}" -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-32)
if [ -f "$model" ] && [ -f models/.stamp ] && [ "$(cat models/.stamp)" = "$stamp" ]; then
  echo "model is up to date ($model)"
  exit 0
fi
echo "training the Rasa model (a few minutes on 2 cores)..."
.venv/bin/rasa train --config config.yml --domain domain.yml --data data --out models \
  --fixed-model-name ordos --quiet
echo "$stamp" > models/.stamp
