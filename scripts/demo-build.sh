#!/usr/bin/env bash
# The build part of the demo: layerkit builds examples/busybox-app FROM a registry image,
# with no daemon and no internet. A local registry (Debian's docker-registry) is started
# on a free loopback port and a busybox base image (made from busybox-static) is pushed
# into it with skopeo. Then: a cold build that pulls the base, pushes the result and
# exports its cache to the registry; a rebuild (every step CACHED, offline); a one-line
# edit (only the steps after it run, each saying why); `layerkit plan`; exports; and
# finally an EMPTY store warm-started with --cache-from (everything CACHED).
#
# Needs root (overlayfs, mounts), runc or crun, /bin/busybox (busybox-static),
# docker-registry and skopeo. Everything it writes lives under .demo/ (reset each run);
# the registry is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="$REPO/.venv/bin/python"
LK="$REPO/.venv/bin/layerkit"
DEMO="$REPO/.demo"
export LAYERKIT_ROOT="$DEMO/store"
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
for tool in docker-registry skopeo; do
    if ! command -v "$tool" >/dev/null; then
        echo "demo-build: $tool is missing; install it with: apt-get install $tool" >&2
        exit 1
    fi
done

rm -rf "$DEMO"
mkdir -p "$DEMO"
step "making a busybox base image from $(command -v busybox) (an OCI layout)"
(cd "$REPO/tests" && "$PY" -m support.images busybox --oci "$DEMO/busybox-oci" --tag latest)

step "starting a local registry (docker-registry) on a free loopback port"
# shellcheck source=scripts/lib-registry.sh
source "$REPO/scripts/lib-registry.sh"
start_registry "$DEMO/registry" "$PY"
echo "registry at $REG (pid $REGISTRY_PID)"

step "skopeo copy oci:busybox-oci docker://$REG/library/busybox:latest"
skopeo copy --quiet --dest-tls-verify=false "oci:$DEMO/busybox-oci:latest" \
    "docker://$REG/library/busybox:latest"

cp -r "$REPO/examples/busybox-app" "$APP"
BASE="$REG/library/busybox:latest"
IMAGE="$REG/busybox-app:1"
CACHE="$REG/busybox-app:cache"
ARGS=(--progress plain --build-arg "BASE=$BASE" -t "$IMAGE")

step "layerkit build --build-arg BASE=$BASE --push --cache-to type=registry,...   (cold)"
"$LK" build "${ARGS[@]}" --push --cache-to "type=registry,ref=$CACHE,mode=max" "$APP"

step "layerkit build again   (nothing changed: every step CACHED, no network needed)"
time "$LK" build "${ARGS[@]}" "$APP"

step "edit one line of app/serve.sh, build again   (only the code COPY runs, and says why)"
echo 'echo "edited by the demo"' >> "$APP/app/serve.sh"
"$LK" build "${ARGS[@]}" --metadata-file "$DEMO/metadata.json" "$APP"
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
"$LK" plan --build-arg "BASE=$BASE" "$APP"

step "export the image: -o type=docker (for docker load) and -o type=local"
"$LK" build "${ARGS[@]}" -o "type=docker,dest=$DEMO/busybox-app.tar" \
    -o "type=local,dest=$DEMO/rootfs" "$APP"
ls -l "$DEMO/busybox-app.tar"
echo "rootfs has: $(ls "$DEMO/rootfs/srv")"

step "push it with its cache: --push --cache-to type=registry,ref=$CACHE,mode=max"
"$LK" build "${ARGS[@]}" --push --cache-to "type=registry,ref=$CACHE,mode=max" "$APP"
skopeo inspect --tls-verify=false "docker://$IMAGE" | "$PY" -c 'import json, sys
d = json.load(sys.stdin)
print("skopeo inspect:", d["Digest"], len(d["Layers"]), "layers")'

step "a fresh CI runner: an EMPTY store with --cache-from type=registry,ref=$CACHE"
LAYERKIT_ROOT="$DEMO/empty-store" "$LK" build "${ARGS[@]}" \
    --cache-from "type=registry,ref=$CACHE" "$APP"
