#!/usr/bin/env bash
# Prepares this machine for side-by-side benchmarks (python -m benchmarks), with no
# public container registry: every base image is built locally and served from
# a loopback registry. Idempotent: a second run only checks, starts what is not
# running and re-pushes (seconds). Safe with no stdin (stdin is /dev/null).
#
#   1. apt-get installs docker.io buildah debootstrap skopeo docker-registry busybox-static
#   2. /etc/docker/daemon.json gets insecure-registries += 127.0.0.1:5000; buildah gets a
#      registries.conf.d drop-in marking 127.0.0.1:5000 insecure
#   3. starts dockerd (plain `dockerd`; flags in $DOCKERD_FLAGS) when `docker info` fails
#   4. starts docker-registry on 127.0.0.1:5000 when /v2/ does not answer
#   5. builds and pushes 127.0.0.1:5000/busybox:1.35 (tests/support/images.py)
#   6. builds and pushes 127.0.0.1:5000/python:3.11-slim-bookworm from
#      `debootstrap --variant=minbase bookworm` + python3-pip python3-venv (cached tarball)
#   7. downloads a few real wheels (requests + deps, click, six) for pip --no-index
#
# Environment: LAYERKIT_BENCH_CACHE (default /var/cache/layerkit-bench), DEBIAN_MIRROR,
# PYTHON (default .venv/bin/python), DOCKERD_FLAGS, BENCH_REGISTRY (default 127.0.0.1:5000).
set -euo pipefail
exec </dev/null

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${LAYERKIT_BENCH_CACHE:-/var/cache/layerkit-bench}"
REGISTRY="${BENCH_REGISTRY:-127.0.0.1:5000}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PY="${PYTHON:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
DOCKERD_FLAGS="${DOCKERD_FLAGS:-}"
BUSYBOX_REF="$REGISTRY/busybox:1.35"
PYTHON_REF="$REGISTRY/python:3.11-slim-bookworm"
START=$(date +%s)

log() { printf '[bench-setup +%ss] %s\n' "$(($(date +%s) - START))" "$*"; }
die() { printf '[bench-setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages, starts dockerd and debootstraps)"
mkdir -p "$CACHE"/{oci,registry,wheels,logs}

# Debian's docker.io 20.10 client has BuildKit built in; a newer client without the
# buildx plugin (e.g. /usr/local/bin/docker) refuses DOCKER_BUILDKIT=1.
docker_cli() { if [ -x /usr/bin/docker ]; then /usr/bin/docker "$@"; else docker "$@"; fi; }

# --- 1. packages -------------------------------------------------------------------
PACKAGES=(docker.io buildah debootstrap skopeo docker-registry busybox-static curl)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$CACHE/logs/apt.log"
else
    log "packages present: ${PACKAGES[*]}"
fi

# --- 2. insecure loopback registry for docker and buildah ----------------------------
mkdir -p /etc/docker /etc/containers/registries.conf.d
daemon_changed=$("$PY" - "$REGISTRY" <<'EOF'
import json, sys
from pathlib import Path
path, reg = Path("/etc/docker/daemon.json"), sys.argv[1]
doc = json.loads(path.read_text() or "{}") if path.exists() else {}
regs = doc.setdefault("insecure-registries", [])
changed = False
for want in (reg, "127.0.0.1:5000"):
    if want not in regs:
        regs.append(want)
        changed = True
if changed:
    path.write_text(json.dumps(doc, indent=2) + "\n")
print("yes" if changed else "no")
EOF
)
cat >/etc/containers/registries.conf.d/50-layerkit-bench.conf <<EOF
# written by layerkit scripts/bench-setup.sh: the loopback benchmark registry speaks HTTP
[[registry]]
location = "$REGISTRY"
insecure = true
EOF
log "docker daemon.json insecure-registries updated: $daemon_changed; buildah drop-in written"

# --- 3. dockerd --------------------------------------------------------------------
if docker_cli info >/dev/null 2>&1; then
    if [ "$daemon_changed" = yes ] && pid=$(pgrep -xo dockerd); then
        kill -HUP "$pid"  # insecure-registries is reloadable
        log "dockerd running; sent SIGHUP to reload daemon.json"
    else
        log "dockerd running"
    fi
else
    log "starting dockerd $DOCKERD_FLAGS (log: $CACHE/logs/dockerd.log)"
    # shellcheck disable=SC2086
    nohup dockerd $DOCKERD_FLAGS >"$CACHE/logs/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker_cli info >/dev/null 2>&1 && break; sleep 0.5; done
    docker_cli info >/dev/null 2>&1 || die "dockerd did not start; see $CACHE/logs/dockerd.log \
(try DOCKERD_FLAGS='--iptables=false --storage-driver=vfs')"
    log "dockerd up"
fi

# --- 4. registry on 127.0.0.1:5000 ------------------------------------------------------
if curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null; then
    log "registry answers on $REGISTRY"
else
    cat >"$CACHE/registry/config.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $CACHE/registry/data}
  delete: {enabled: true}
http: {addr: "$REGISTRY", secret: layerkit-bench}
EOF
    nohup docker-registry serve "$CACHE/registry/config.yml" \
        >"$CACHE/logs/registry.log" 2>&1 &
    echo $! >"$CACHE/registry/pid"
    for _ in $(seq 50); do curl -fsS -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && break; sleep 0.2; done
    curl -fsS -o /dev/null "http://$REGISTRY/v2/" \
        || die "registry did not start; see $CACHE/logs/registry.log"
    log "registry started on $REGISTRY (pid $(cat "$CACHE/registry/pid"))"
fi

# --- 5. busybox ----------------------------------------------------------------------
(cd "$REPO" && "$PY" -m tests.support.images busybox --oci "$CACHE/oci/busybox" --tag 1.35 \
    --docker-archive "$CACHE/busybox-1.35.docker.tar" --repo-tag "$BUSYBOX_REF" \
    --push "$BUSYBOX_REF" >/dev/null)
log "pushed $BUSYBOX_REF"

# --- 6. Debian + python3 + pip ---------------------------------------------------------
ROOTFS_TAR="$CACHE/debian-bookworm-python.rootfs.tar.gz"
if [ ! -s "$ROOTFS_TAR" ]; then
    work="$CACHE/work"
    rm -rf "$work"
    mkdir -p "$work"
    log "debootstrap --variant=minbase bookworm + python3-pip python3-venv (a few minutes)"
    # --include installs through the same dependency resolution as `chroot apt-get install`
    # without mounting /proc into the chroot.
    debootstrap --variant=minbase --include=python3-pip,python3-venv,python-is-python3 \
        bookworm "$work/rootfs" "$MIRROR" >"$CACHE/logs/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/logs/debootstrap.log"
    r="$work/rootfs"
    chroot "$r" apt-get clean
    # Slim it like the python:*-slim images: no apt lists, docs, man pages or caches.
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/log/* \
        "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
        "$r"/usr/share/locale/* "$r"/var/cache/debconf/*-old "$r"/dev/*
    # pip in the image behaves like the official image's: no PEP 668 refusal.
    rm -f "$r"/usr/lib/python3*/EXTERNALLY-MANAGED
    find "$r" -name __pycache__ -prune -exec rm -rf {} +
    tar --numeric-owner -C "$r" -czf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$work"
    log "cached $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
else
    log "using cached $ROOTFS_TAR"
fi
PY_OCI="$CACHE/oci/python"
if [ ! -s "$PY_OCI/index.json" ] || [ "$ROOTFS_TAR" -nt "$PY_OCI/index.json" ]; then
    tmp="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    tar -C "$tmp" --numeric-owner -xzf "$ROOTFS_TAR"
    (cd "$REPO" && "$PY" -m tests.support.images rootfs "$tmp" --oci "$PY_OCI" \
        --tag 3.11-slim-bookworm --env LANG=C.UTF-8 --cmd python3 >/dev/null)
    rm -rf "$tmp"
    log "built OCI layout $PY_OCI"
fi
skopeo copy --quiet --dest-tls-verify=false "oci:$PY_OCI:3.11-slim-bookworm" \
    "docker://$PYTHON_REF"
log "pushed $PYTHON_REF"

# --- 7. wheels for pip install --no-index --find-links ------------------------------------
if [ ! -f "$CACHE/wheels/.complete" ]; then
    "$PY" -m pip download -q --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform any \
        -d "$CACHE/wheels" requests click six 2>"$CACHE/logs/pip-download.log"
    touch "$CACHE/wheels/.complete"
    log "downloaded wheels: $(cd "$CACHE/wheels" && ls ./*.whl | tr '\n' ' ')"
else
    log "wheels cached in $CACHE/wheels"
fi

log "done: registry $REGISTRY has busybox:1.35 and python:3.11-slim-bookworm; \
wheels in $CACHE/wheels"
