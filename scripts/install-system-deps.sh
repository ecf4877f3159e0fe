#!/usr/bin/env bash
# Installs the Debian packages layerkit and its test suite use:
#   python3-venv            to create the project's virtualenv
#   runc                    the OCI runtime that executes RUN steps (crun is tried first when present)
#   skopeo umoci            independent validators of the images layerkit writes
#   docker-registry         a real OCI registry for the registry tests
#   busybox-static          a tiny base image built inside the tests (no internet needed)
#   docker.io podman        real engines that must load and run the images we export
#                           (the tests start a private dockerd when none is running)
# Without root or apt-get it only reports what is missing: the tests that need a
# missing tool skip and say which tool.
set -euo pipefail

PACKAGES=(python3-venv runc skopeo umoci docker-registry busybox-static docker.io podman apache2-utils)

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present (${PACKAGES[*]})"
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages missing: ${missing[*]}" >&2
    echo "install them as root: apt-get install -y ${missing[*]}" >&2
    echo "(tests that need them will skip and name the missing tool)" >&2
    exit 0
fi

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
