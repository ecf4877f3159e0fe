#!/usr/bin/env bash
# Times the CI scenario of docs/remote-cache.md: a cold build of examples/busybox-app on an
# empty store (exporting its cache with --cache-to type=registry,mode=max, as a CI runner
# would) against an EMPTY store rebuilding the unchanged project with --cache-from.
# Each is run ROUNDS times (default 3) on fresh stores; prints the medians and the ratio.
#
# Usage: scripts/measure-remote-cache.sh [ROUNDS] [EXTRA_RUN_SECONDS]
#   EXTRA_RUN_SECONDS (default 0) appends `RUN sleep N` to the example, standing in for a
#   real dependency install, to show how the ratio grows with the work a cache saves.
# Needs what scripts/demo-build.sh needs (root, runc, busybox-static, docker-registry,
# skopeo). Works under .measure/ (reset each run); the registry is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="$REPO/.venv/bin/python"
LK="$REPO/.venv/bin/layerkit"
WORK="$REPO/.measure"
ROUNDS="${1:-3}"
EXTRA="${2:-0}"

rm -rf "$WORK"
mkdir -p "$WORK/registry"
(cd "$REPO/tests" && "$PY" -m support.images busybox --oci "$WORK/busybox-oci" --tag latest) \
    >/dev/null
# shellcheck source=scripts/lib-registry.sh
source "$REPO/scripts/lib-registry.sh"
start_registry "$WORK/registry" "$PY"
skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/busybox-oci:latest" \
    "docker://$REG/library/busybox:latest"

APP="$WORK/app"
cp -r "$REPO/examples/busybox-app" "$APP"
if [ "$EXTRA" != 0 ]; then
    # After the base stage's RUN: a slow step the cache saves on every later build.
    sed -i "s|^FROM base AS deps|RUN sleep $EXTRA\n\nFROM base AS deps|" "$APP/Dockerfile"
fi
ARGS=(--progress plain --build-arg "BASE=$REG/library/busybox:latest")

now() { "$PY" -c 'import time; print(time.monotonic())'; }
cold=() warm=()
for i in $(seq "$ROUNDS"); do
    CACHE="$REG/measure-cache:r$i"
    t0=$(now)
    LAYERKIT_ROOT="$WORK/cold-$i" "$LK" build "${ARGS[@]}" \
        --cache-to "type=registry,ref=$CACHE,mode=max" "$APP" >"$WORK/cold-$i.log" 2>&1
    t1=$(now)
    LAYERKIT_ROOT="$WORK/warm-$i" "$LK" build "${ARGS[@]}" \
        --cache-from "type=registry,ref=$CACHE" "$APP" >"$WORK/warm-$i.log" 2>&1
    t2=$(now)
    grep -q "steps, \([0-9]*\) cached" "$WORK/warm-$i.log"
    cold+=("$("$PY" -c "print($t1 - $t0)")") warm+=("$("$PY" -c "print($t2 - $t1)")")
    echo "round $i: cold $(printf %.2f "${cold[-1]}")s, empty store + --cache-from" \
         "$(printf %.2f "${warm[-1]}")s ($(grep -o 'built: .*' "$WORK/warm-$i.log"))"
done
"$PY" - "${cold[*]}" "${warm[*]}" <<'PYEOF'
import statistics, sys
cold = [float(x) for x in sys.argv[1].split()]
warm = [float(x) for x in sys.argv[2].split()]
c, w = statistics.median(cold), statistics.median(warm)
print(f"median cold {c:.2f}s, median warm {w:.2f}s, ratio {c / w:.1f}x")
PYEOF
