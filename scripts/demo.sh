#!/usr/bin/env bash
# The README's first command ends here: layerkit builds an example image (twice, to show
# the cache at work, then after an edit, saying why each step ran), then explains a
# Dockerfile's stages and lints a naive one with `layerkit check` (and fixes it).
set -euo pipefail
cd "$(dirname "$0")/.."
LK=.venv/bin/layerkit
EXAMPLE=examples/python-service

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

bash scripts/demo-build.sh

step "layerkit parse --stages $EXAMPLE   (stages, dependencies, build order)"
$LK parse --stages "$EXAMPLE"

step "layerkit check $EXAMPLE            (a cache-friendly Dockerfile: no findings expected)"
$LK check "$EXAMPLE"

step "layerkit check -f $EXAMPLE/Dockerfile.naive $EXAMPLE   (the same app, laid out naively)"
$LK check -f "$EXAMPLE/Dockerfile.naive" "$EXAMPLE" || echo "(exit $?: findings reported)"

step "layerkit check --fix on a scratch copy of the naive Dockerfile"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$EXAMPLE/." "$scratch/"
$LK check --fix -f "$scratch/Dockerfile.naive" "$scratch" || true
step "after --fix, check again"
$LK check -f "$scratch/Dockerfile.naive" "$scratch" || echo "(exit $?: what is left needs a human)"
