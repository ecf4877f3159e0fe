"""The builders under test, each reduced to command lines.

Input: a ``Project`` and a scratch directory. Output: the argv lists that
build it, export it to a docker-archive tar and reset the builder to cold.
Every builder is a ``CommandBuilder`` driven by templates, so plugging in
another one (or changing how layerkit is called) needs only a command line:
``--builder-cmd NAME=BUILD_TEMPLATE`` (see docs/benchmarks.md).

Template placeholders: {python} {root} {tag} {dockerfile} {context} {dest}.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.measure import run_quiet
from benchmarks.projects import Project


@dataclass
class CommandBuilder:
    """A builder described by command templates; ``None`` export means unsupported."""

    name: str
    build: str
    export: str | None = None
    probe: str | None = None  # must exit 0 for the builder to be available
    reset_commands: list[str] = field(default_factory=list)
    root: Path | None = None  # private store, deleted on reset
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = sys.executable
    note: str = ""
    unavailable: str | None = None  # set by ``check``: the reason

    def _fill(self, template: str, project: Project | None, dest: Path | None = None) -> list[str]:
        values = {
            "python": self.python,
            "root": str(self.root or ""),
            "tag": project.tag if project else "",
            "dockerfile": str(project.dockerfile) if project else "",
            "context": str(project.context) if project else "",
            "dest": str(dest or ""),
        }
        return [token.format(**values) for token in shlex.split(template)]

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def check(self) -> str | None:
        """Return why the builder cannot run here, or None when it can."""
        if self.probe is None:
            return None
        argv = self._fill(self.probe, None)
        if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
            self.unavailable = f"{argv[0]} not found"
            return self.unavailable
        try:
            done = run_quiet(argv, env=self.full_env(), timeout=60)
        except (OSError, TimeoutError) as err:
            self.unavailable = str(err)
            return self.unavailable
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            self.unavailable = f"`{' '.join(argv)}` exited {done.returncode}: {lines[-1]}"
        return self.unavailable

    def build_argvs(self, project: Project) -> list[list[str]]:
        return [self._fill(part, project) for part in self.build.split(" && ")]

    def export_argvs(self, project: Project, dest: Path) -> list[list[str]] | None:
        if self.export is None:
            return None
        return [self._fill(part, project, dest) for part in self.export.split(" && ")]

    def reset(self, projects: list[Project]) -> None:
        """Make the next build cold: no build cache, no built or base images."""
        for template in self.reset_commands:
            for project in projects:
                run_quiet(self._fill(template, project), env=self.full_env())
        if self.root is not None and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


def docker_client() -> tuple[str, bool] | None:
    """(docker binary, has buildx): a client that can drive BuildKit on this dockerd.

    A new client (>= 23) without the buildx plugin refuses ``DOCKER_BUILDKIT=1``;
    Debian's docker.io 20.10 client has BuildKit built in, so prefer it then.
    """
    candidates = [c for c in (shutil.which("docker"), "/usr/bin/docker") if c]
    for binary in dict.fromkeys(candidates):
        if not Path(binary).exists():
            continue
        if run_quiet([binary, "buildx", "version"], timeout=30).returncode == 0:
            return binary, True
        version = run_quiet([binary, "version", "--format", "{{.Client.Version}}"], timeout=30)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and int(major) < 23:
            return binary, False
    return None


def make_layerkit(python: str, stores: Path, extra_args: str = "") -> CommandBuilder:
    # The `layerkit` command users run (the console script beside the interpreter);
    # `python -m layerkit` only when there is none (it pays for runpy too).
    script = Path(python).parent / "layerkit"
    entry = shlex.quote(str(script)) if script.is_file() else "{python} -m layerkit"
    common = (f"{entry} build --root {{root}} -t {{tag}} -f {{dockerfile}} "
              + extra_args.replace("{", "{{").replace("}", "}}"))
    return CommandBuilder(
        name="layerkit",
        build=f"{common} {{context}}",
        export=f"{common} --output type=docker,dest={{dest}} {{context}}",
        probe="{python} -m layerkit build --help",
        root=stores / "layerkit",
        python=python,
        note="the `layerkit` console script; cold = empty --root store (base image pulled "
             "from the loopback registry)",
    )


def make_docker(bases: list[str]) -> CommandBuilder:
    found = docker_client()
    if found is None:
        builder = CommandBuilder(name="docker", build="docker build")
        builder.unavailable = "no docker client with BuildKit (need buildx or docker.io 20.10)"
        return builder
    binary, buildx = found
    build = (f"{binary} buildx build --load" if buildx else f"{binary} build") + \
        " --progress=plain -t {tag} -f {dockerfile} {context}"
    rmi_bases = " ".join(bases)
    return CommandBuilder(
        name="docker",
        build=build,
        export=f"{build} && {binary} save -o {{dest}} {{tag}}",
        probe=f"{binary} info --format {{{{.ServerVersion}}}}",
        # Dangling images of earlier builds still hold base layers: prune them too
        # (this removes every dangling image on the daemon; bench-setup's is dedicated).
        reset_commands=[f"{binary} image rm -f {{tag}} {rmi_bases}",
                        f"{binary} image prune -f",
                        f"{binary} builder prune -af"],
        env={"DOCKER_BUILDKIT": "1"},
        note="BuildKit inside dockerd; RSS is the client's only; cold = rmi + image/builder prune",
    )


def stores_dir(scratch: Path) -> tuple[Path, str | None]:
    """The parent of the builders' private stores, flagged as a top of a directory
    hierarchy (``chattr +T``), and a note when the flag could not be set.

    ext4 places a new directory in its parent's block group, and creating a file
    in a group where many inodes were freed in the last ~30 s costs up to 15x
    more (measured on this machine: 0.02 ms vs 0.3-0.5 ms per file; the kernel
    skips recently deleted inodes one by one). Side by side in one scratch
    directory, layerkit's store shared buildah's group, so every file pip wrote
    inside a layerkit RUN paid for buildah's deletions. With +T, ext4 spreads the
    stores over different groups, as separate default stores (/var/lib/docker,
    /var/lib/containers, /var/lib/layerkit) are on a real machine.
    """
    stores = scratch / "stores"
    stores.mkdir(parents=True, exist_ok=True)
    chattr = shutil.which("chattr")
    done = run_quiet([chattr, "+T", str(stores)]) if chattr else None
    if done is None or done.returncode != 0:
        why = "chattr not found" if done is None else f"chattr +T failed ({done.stderr.strip()})"
        return stores, f"{why}: the builders' stores under {stores} may share ext4 block groups"
    return stores, None


def make_buildah(stores: Path) -> CommandBuilder:
    store = stores / "buildah"
    g = f"buildah --root {store}/root --runroot {store}/runroot"
    build = f"{g} bud --layers -q -t {{tag}} -f {{dockerfile}} {{context}}"
    return CommandBuilder(
        name="buildah",
        build=build,
        export=f"{build} && {g} push -q {{tag}} docker-archive:{{dest}}:{{tag}}",
        probe="buildah --version",
        reset_commands=[f"{g} rm --all", f"{g} rmi --all --force"],
        note="private --root store; cold = rmi --all (layers cache included)",
    )
