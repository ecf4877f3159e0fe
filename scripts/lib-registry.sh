# Sourced by the demo and measurement scripts: start Debian's docker-registry on a
# free loopback port, stopped when the calling script exits.
#   start_registry DIR PYTHON   → sets REG (host:port) and REGISTRY_PID
start_registry() {
    local dir="$1" py="$2" port
    port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    REG="127.0.0.1:$port"
    mkdir -p "$dir"
    cat > "$dir/config.yml" <<CONFIG
{"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": true}},
 "storage": {"filesystem": {"rootdirectory": "$dir/data"}},
 "http": {"addr": "$REG", "secret": "layerkit-local"}}
CONFIG
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    REGISTRY_PID=$!
    trap 'kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        if "$py" -c "import urllib.request; urllib.request.urlopen('http://$REG/v2/')" \
            2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "docker-registry did not answer on $REG (log: $dir/log)" >&2
    return 1
}
