#!/usr/bin/env bash
# The build part of the demo: layerkit builds examples/busybox-app with no daemon and no
# network, twice (the second time every step is CACHED), then again after a one-line
# edit (only the steps after it run, each saying why), then `layerkit plan` predicts
# the effect of another edit without running anything.
#
# Needs root (overlayfs, mounts), runc or crun, and /bin/busybox (busybox-static).
# Everything it writes lives under .demo/ (the store is .demo/store, reset each run).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="$REPO/.venv/bin/python"
LK="$REPO/.venv/bin/layerkit"
DEMO="$REPO/.demo"
export LAYERKIT_ROOT="$DEMO/store"
BASE_TAR="$DEMO/busybox.tar"
APP="$DEMO/busybox-app"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
    echo "demo-build: real builds need root (overlayfs snapshots, runc); skipping" >&2
    exit 0
fi
if ! command -v runc >/dev/null && ! command -v crun >/dev/null; then
    echo "demo-build: no OCI runtime; install one with: apt-get install runc" >&2
    exit 1
fi

mkdir -p "$DEMO"
if [ ! -f "$BASE_TAR" ]; then
    step "making a busybox base image from $(command -v busybox) (no registry needed)"
    (cd "$REPO/tests" && "$PY" -m support.images busybox --oci "$DEMO/busybox-oci" \
        --tag latest --docker-archive "$BASE_TAR" --repo-tag busybox:latest)
fi
rm -rf "$LAYERKIT_ROOT" "$APP"
cp -r "$REPO/examples/busybox-app" "$APP"

step "layerkit load -i $BASE_TAR   (docker-archive → the local image store)"
"$LK" load -i "$BASE_TAR"

step "layerkit build -t busybox-app $APP   (cold: every step runs)"
"$LK" build --progress plain -t busybox-app "$APP"

step "layerkit build again   (nothing changed: every step CACHED)"
time "$LK" build --progress plain -t busybox-app "$APP"

step "edit one line of app/serve.sh, build again   (only the code COPY runs, and says why)"
echo 'echo "edited by the demo"' >> "$APP/app/serve.sh"
"$LK" build --progress plain -t busybox-app --metadata-file "$DEMO/metadata.json" "$APP"
"$PY" - "$DEMO/metadata.json" <<'PYEOF'
import json, sys
data = json.load(open(sys.argv[1]))
print(f"image {data['containerimage.config.digest']}")
for s in data["steps"]:
    if s["number"]:
        print(f"  {s['status']:6}  {s['instruction'].splitlines()[0][:60]:60}  {s['reason']}")
PYEOF

step "edit deps.txt, then layerkit plan   (predicts what would run, runs nothing)"
echo "libbaz" >> "$APP/deps.txt"
"$LK" plan "$APP"

step "export the image: -o type=docker (for docker load) and -o type=local"
"$LK" build --progress plain -t busybox-app -o "type=docker,dest=$DEMO/busybox-app.tar" \
    -o "type=local,dest=$DEMO/rootfs" "$APP"
ls -l "$DEMO/busybox-app.tar"
echo "rootfs has: $(ls "$DEMO/rootfs/srv")"
