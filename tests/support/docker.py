"""A real Docker engine for the tests that load and run our images.

If a daemon already answers (``docker info``), it is used. Otherwise, as root,
Debian's ``dockerd`` is started privately for the test session: its own data
root, exec root and unix socket under a temp dir, no bridge and no iptables
changes, so it never disturbs the host. It is stopped at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .tools import ToolMissing, find_tool

# Debian's client (docker.io) is preferred: another client earlier on PATH may
# lack the plugins this machine's docker.io has built in.
_CLIENTS = (Path("/usr/bin/docker"),)


@dataclass
class DockerDaemon:
    client: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log: list[str] = field(default_factory=list)

    def run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.client), *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def _client() -> Path:
    for candidate in _CLIENTS:
        if candidate.is_file():
            return candidate
    found = find_tool("docker")
    if found is None:
        raise ToolMissing("docker")
    return found


def _answers(client: Path, env: dict[str, str]) -> bool:
    try:
        proc = subprocess.run([str(client), "info"], env=env, capture_output=True,
                              timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def start_docker(workdir: Path, *, timeout: float = 60.0) -> DockerDaemon:
    """An answering Docker engine: the host's if one runs, else a private dockerd."""
    client = _client()
    env = dict(os.environ)
    if _answers(client, env):
        return DockerDaemon(client=client, env=env)
    dockerd = find_tool("dockerd")
    if dockerd is None:
        raise ToolMissing("dockerd")
    if os.geteuid() != 0:
        raise ToolMissing("dockerd", "starting a private Docker engine needs root")
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "docker.sock"
    env["DOCKER_HOST"] = f"unix://{sock}"
    log_path = workdir / "dockerd.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(dockerd), "--data-root", str(workdir / "data"),
             "--exec-root", str(workdir / "exec"), "--pidfile", str(workdir / "dockerd.pid"),
             "-H", f"unix://{sock}", "--bridge=none", "--iptables=false",
             "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    daemon = DockerDaemon(client=client, env=env, process=process, workdir=workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _answers(client, env):
            return daemon
        time.sleep(0.5)
    daemon.stop()
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"dockerd did not come up within {timeout:.0f}s:\n{tail}")
