"""Rules about the layer cache: copy-before-install, volatile-arg-early,
missing-cache-mount and apt-lists-left."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterator

from layerkit.lint.edits import (
    append_to_instruction,
    eol,
    insert_after_keyword,
    instruction_text,
)
from layerkit.lint.findings import Finding, Fix, LineEdit
from layerkit.lint.model import (
    Instruction,
    Model,
    Stage,
    arg_pairs,
    env_pairs,
    flag_values,
    referenced_vars,
)
from layerkit.lint.registry import LintInput, check, finding
from layerkit.lint.shellcmd import (
    Install,
    assignments,
    classify,
    find_installs,
    program,
    removes_path,
    runs,
    split_commands,
)

# --------------------------------------------------------------------------- manifests

MANIFESTS: dict[str, tuple[str, ...]] = {
    "python": ("requirements*.txt", "requirements*.in", "constraints*.txt", "pyproject.toml",
               "poetry.lock", "uv.lock", "Pipfile", "Pipfile.lock", "pdm.lock"),
    "node": ("package.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock",
             "pnpm-lock.yaml", "pnpm-workspace.yaml", ".npmrc", ".yarnrc", ".yarnrc.yml",
             "package*.json", "bun.lockb", "bun.lock"),
    "ruby": ("Gemfile", "Gemfile.lock", "*.gemspec"),
    "go": ("go.mod", "go.sum", "go.work", "go.work.sum"),
    "rust": ("Cargo.toml", "Cargo.lock", "rust-toolchain.toml", "rust-toolchain"),
    "php": ("composer.json", "composer.lock"),
    "maven": ("pom.xml", ".mvn", "mvnw"),
    "gradle": ("build.gradle*", "settings.gradle*", "gradle.properties", "gradle", "gradlew",
               "gradle/libs.versions.toml"),
    "system": (),
}
_ALL_MANIFESTS = (
    *(p for pats in MANIFESTS.values() for p in pats),
    "*.csproj", "*.sln", "packages.config", "requirements", "mix.exs", "mix.lock",
)
_MANIFEST_DIRS = {"requirements", ".mvn", "gradle", ".yarn"}
# directories of build scripts and configuration: copied early on purpose, they
# change rarely and the install step usually runs them
_SCRIPT_DIRS = {"scripts", "script", "bin", "docker", ".docker", "deploy", "config", "conf",
                "etc", "tools", "ci", "hack", "patches", "build-scripts", "certs", "keys",
                "rootfs", "overlay", "files", "assets", "fonts", "migrations", "sql", "nginx"}
_CODE_EXT = {
    ".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt",
    ".rb", ".php", ".c", ".cc", ".cpp", ".h", ".hpp", ".cs", ".scala", ".ex", ".exs",
    ".vue", ".svelte", ".swift", ".dart",
}
_KNOWN_FILES = {
    "makefile", "dockerfile", "license", "readme", "procfile", "justfile", "gemfile",
    "pipfile", "vagrantfile", "rakefile", "caddyfile", "brewfile", "notice", "version",
    "authors", "changelog", "entrypoint", "docker-entrypoint", "start", "run", "mvnw",
    "gradlew", "manage", "config", "nginx", "tini",
}
# instructions a moved COPY may safely jump over
_TRANSPARENT = {"env", "arg", "label", "expose", "user", "healthcheck", "stopsignal"}
# shell commands that may share a RUN with an install we move or split: they do not
# read the build context (a package manager only counts with one of _PM_BENIGN)
_HARMLESS = {
    "apt-get", "apt", "apk", "rm", "mkdir", "echo", "true", "ln", "chmod", "chown", "cd",
    "useradd", "groupadd", "adduser", "addgroup", "export", "set", "corepack",
    "update-ca-certificates", "touch", "printf", "apt-mark", "dpkg-reconfigure", "locale-gen",
    "yum", "dnf", "microdnf",
}
ECOSYSTEM_PROGRAMS = {
    "npm", "yarn", "pnpm", "pip", "pip3", "python", "python3", "uv", "poetry", "pipenv", "gem",
    "bundle", "go", "composer", "mvn", "mvnw", "cargo", "gradle", "gradlew",
}
# package-manager subcommands that only touch caches, configuration or the tool itself
_PM_BENIGN = {"cache", "config", "set", "enable", "prepare", "env", "--version", "-v",
              "version", "clean"}


def _movable_script(script: str) -> bool:
    """True when every command of a RUN can run before the sources are copied: installs
    that read only manifests, and commands that never read the build context
    (``npm run build``, ``python manage.py ...``, ``make`` need the sources)."""
    for words in split_commands(script):
        found = classify(words)
        if found is not None:
            if found.needs_source or (found.manager == "go" and found.kind == "build"):
                return False
            continue
        prog = program(words[0])
        if prog in _HARMLESS:
            continue
        if prog in ECOSYSTEM_PROGRAMS and len(words) > 1 and words[1] in _PM_BENIGN:
            continue
        return False
    return True


def is_manifest(path: str) -> bool:
    """True for a dependency manifest (or lock file) path, by base name."""
    base = posixpath.basename(posixpath.normpath(path))
    return any(fnmatch.fnmatchcase(base, pat) for pat in _ALL_MANIFESTS) or (
        base in _MANIFEST_DIRS
    )


def _is_url(src: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", src, re.I)) or src.startswith("git@")


def broad_sources(inp: LintInput, instr: Instruction) -> list[str]:
    """Sources of a context COPY/ADD that bring in more than manifests (or files
    that rarely change, such as one entrypoint script)."""
    if instr.keyword not in ("copy", "add") or not instr.from_context():
        return []
    sources, _dest = instr.copy_parts()
    out: list[str] = []
    ctx = inp.context
    for src in sources:
        if "$" in src or _is_url(src) or src.startswith("<<"):
            continue
        norm = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
        base = posixpath.basename(norm)
        if norm in (".", "*", "./*"):
            out.append(src)
            continue
        if is_manifest(norm) or base.lower() in _SCRIPT_DIRS:
            continue
        if any(ch in norm for ch in "*?["):
            ext = posixpath.splitext(base)[1].lower()
            if base == "*" or ext in _CODE_EXT:
                out.append(src)
            continue
        ext = posixpath.splitext(base)[1].lower()
        if ctx is not None and ctx.exists(norm):
            if ctx.is_dir(norm) or ext in _CODE_EXT:
                out.append(src)
            continue
        if src.endswith("/") or ext in _CODE_EXT:
            out.append(src)
        elif not ext and base.lower() not in _KNOWN_FILES and not base.startswith("."):
            out.append(src)  # probably a directory
    return out


def _manifest_ecosystems(instr: Instruction) -> set[str]:
    sources, _ = instr.copy_parts()
    found: set[str] = set()
    for src in sources:
        base = posixpath.basename(posixpath.normpath(src))
        for eco, pats in MANIFESTS.items():
            if any(fnmatch.fnmatchcase(base, p) for p in pats):
                found.add(eco)
    return found


def _run_installs(instr: Instruction) -> list[Install]:
    if instr.keyword != "run":
        return []
    return find_installs(instr.script())


def _stage_env(stage: Stage, before: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for instr in stage.instructions[:before]:
        if instr.keyword == "env":
            env.update(env_pairs(instr))
    return env


def _counted(install: Install) -> bool:
    """Installs copy-before-install cares about (``go build`` is compilation)."""
    return not (install.manager == "go" and install.kind == "build")


@check("copy-before-install")
def copy_before_install(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for stage in model.stages:
        instrs = stage.instructions
        for ci, copy in enumerate(instrs):
            broad = broad_sources(inp, copy)
            if not broad:
                continue
            earlier_eco: set[str] = set()
            manifest_eco: set[str] = set()
            inherited = [i for idx in model.chain(stage.index)[1:]
                         for i in model.stages[idx].instructions]
            for prev in [*inherited, *instrs[:ci]]:
                # a global tool install (`npm i -g pnpm`) does not install the project's
                # dependencies: only manifest installs and builds make a later one expected
                earlier_eco.update(i.ecosystem for i in _run_installs(prev)
                                   if i.kind != "global")
                if prev.keyword in ("copy", "add") and prev.from_context():
                    manifest_eco.update(_manifest_ecosystems(prev))
            whole = any(posixpath.normpath(s) in (".", "*") for s in broad)
            affected_runs: list[tuple[int, list[Install]]] = []
            for ri in range(ci + 1, len(instrs)):
                affected = [
                    install for install in _run_installs(instrs[ri])
                    if _counted(install) and install.ecosystem not in earlier_eco
                    and (whole or install.ecosystem not in manifest_eco)
                ]
                if affected:
                    affected_runs.append((ri, affected))
            if not affected_runs:
                continue
            every = [i for _, found in affected_runs for i in found]
            deps = [i for i in every if i.kind not in ("system", "global")]
            first = deps[0] if deps else every[0]
            first_line = next(instrs[ri].line for ri, found in affected_runs if first in found)
            what = "the whole context" if whole else ", ".join(broad)
            if not deps:
                message = (
                    f"{model.quote(copy)} sends {what} before `{first.text()}` (line "
                    f"{first_line}), so any code change re-runs an install that does not need "
                    "your sources"
                )
                hint = "move the install above the COPY"
            else:
                message = (
                    f"{model.quote(copy)} sends {what} before `{first.text()}` (line "
                    f"{first_line}), so any code change reinstalls dependencies"
                )
                names = _manifests_for(deps)
                hint = (
                    f"copy {' '.join(names[:3]) or 'the dependency manifests'} first, "
                    f"install, then {model.quote(copy)}"
                )
            ri, affected = affected_runs[0]
            system = all(i.kind in ("system", "global") for i in affected)
            fix = _fix_copy_before_install(inp, stage, ci, ri, affected, system)
            if fix is not None:
                hint += " (fixable with --fix)"
            elif first.needs_source:
                hint += (
                    "; this install needs the sources: install only the dependencies "
                    "first (e.g. `uv sync --no-install-project`, `poetry install "
                    "--no-root`, `pip install -r requirements.txt`)"
                )
            yield finding(inp, "copy-before-install", copy, message, hint, fix)


def _manifests_for(installs: list[Install]) -> list[str]:
    names: list[str] = []
    for inst in installs:
        names.extend(inst.files)
        if not inst.files:
            names.extend(
                {"python": ["pyproject.toml"], "node": ["package.json"], "ruby": ["Gemfile"],
                 "go": ["go.mod", "go.sum"], "rust": ["Cargo.toml"],
                 "php": ["composer.json"], "maven": ["pom.xml"],
                 "gradle": ["build.gradle"]}.get(inst.ecosystem, [])
            )
    return list(dict.fromkeys(names))


def _fix_copy_before_install(
    inp: LintInput, stage: Stage, ci: int, ri: int, installs: list[Install], system: bool
) -> Fix | None:
    model = inp.model
    instrs = stage.instructions
    copy, run = instrs[ci], instrs[ri]
    if run.node.heredocs or copy.node.heredocs or not run.node.next:
        return None
    if any(i.keyword not in _TRANSPARENT for i in instrs[ci + 1 : ri]):
        return None
    if not _movable_script(run.script()):
        return None
    nl = eol(model)
    if system:
        # the install does not need the sources: move the RUN above the COPY
        text = instruction_text(model, run)
        return Fix(
            "move the install above the broad COPY",
            (
                LineEdit(copy.line, copy.line - 1, text),
                LineEdit(run.line, run.end_line, ""),
            ),
        )
    if inp.context is None:
        return None
    if any(i.needs_source for i in installs if i.kind != "system"):
        return None
    if any(i.manager in ("cargo", "composer", "gradle", "pnpm") for i in installs):
        return None
    sources, dest = copy.copy_parts()
    broad = broad_sources(inp, copy)
    if len(sources) != 1 or len(broad) != 1 or "$" in dest:
        return None
    src = posixpath.normpath(sources[0].lstrip("/")) if sources[0].strip("/") else "."
    ctx = inp.context
    if src != "." and not ctx.is_dir(src):
        return None
    wanted: list[str] = []
    for inst in installs:
        if inst.kind == "system":
            continue
        wanted.extend(_required_files(ctx.root, src, inst))
        for pat in MANIFESTS[inst.ecosystem]:
            if any(ch in pat for ch in "*?["):
                continue
            rel = pat if src == "." else f"{src}/{pat}"
            if ctx.exists(rel) and not ctx.is_dir(rel) and not ctx.ignored(rel):
                wanted.append(pat)
    if any(i.kind != "system" for i in installs) and not wanted:
        return None
    if ".yarnrc.yml" in wanted:
        return None  # yarn berry needs .yarn/ too; leave it to the author
    wanted = list(dict.fromkeys(wanted))
    for name in wanted:
        rel = name if src == "." else f"{src}/{name}"
        if not ctx.exists(rel) or ctx.ignored(rel):
            return None
    flags = [f for f in copy.flags if f.lstrip("-").split("=")[0].lower() in ("chown", "chmod")]
    keyword = copy.node.value if copy.keyword == "copy" else (
        "COPY" if copy.node.value.isupper() else "copy")
    lines: list[str] = []
    plain = [w for w in wanted if "/" not in w]
    nested = [w for w in wanted if "/" in w]
    target = dest if dest in (".", "./") or dest.endswith("/") else dest + "/"
    if plain:
        srcs = [w if src == "." else f"{src}/{w}" for w in plain]
        # "./" rather than ".": the classic builder wants a slash after several sources
        to = "./" if target == "." and len(srcs) > 1 else target
        lines.append(" ".join([keyword, *flags, *srcs, to]) + nl)
    for w in nested:
        srcw = w if src == "." else f"{src}/{w}"
        sub = posixpath.dirname(w)
        lines.append(" ".join([keyword, *flags, srcw, posixpath.join(target, sub) + "/"]) + nl)
    return Fix(
        "copy the dependency manifests first and the sources after the install",
        (
            LineEdit(copy.line, copy.end_line, ""),
            LineEdit(run.line, run.line - 1, "".join(lines)),
            LineEdit(run.end_line + 1, run.end_line, instruction_text(model, copy)),
        ),
    )


def _required_files(root: object, src: str, inst: Install) -> list[str]:
    """Files named on the command line (``-r requirements/prod.txt``) and the
    requirement files they include in turn."""
    from pathlib import Path

    base = Path(str(root)) if src == "." else Path(str(root)) / src
    out: list[str] = []
    todo = [f for f in inst.files if "$" not in f and not f.startswith("/")]
    while todo:
        name = posixpath.normpath(todo.pop(0))
        if name in out or name.startswith(".."):
            continue
        out.append(name)
        path = base / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            m = re.match(r"^\s*(?:-r|-c|--requirement|--constraint)[ =]?\s*(\S+)", line)
            if m:
                todo.append(posixpath.join(posixpath.dirname(name), m.group(1)))
    return out


# --------------------------------------------------------------------------- volatile ARG

_VOLATILE = {
    "BUILD_DATE", "BUILDDATE", "BUILD_TIME", "BUILD_TIMESTAMP", "TIMESTAMP", "DATE",
    "GIT_SHA", "GIT_COMMIT", "GIT_COMMIT_SHA", "GIT_REVISION", "GIT_HASH", "COMMIT_SHA",
    "COMMIT", "COMMIT_HASH", "COMMIT_ID", "REVISION", "VCS_REF", "VCS_REVISION",
    "SOURCE_COMMIT", "SOURCE_VERSION", "BUILD_NUMBER", "BUILD_ID", "BUILD_REF", "CI_COMMIT_SHA",
    "CI_PIPELINE_ID", "CI_JOB_ID", "GITHUB_SHA", "GITHUB_RUN_ID", "GITHUB_RUN_NUMBER",
    "BUILD_SHA", "SHORT_SHA", "GIT_SHORT_SHA",
}
_VERSIONISH = {
    "VERSION", "APP_VERSION", "BUILD_VERSION", "RELEASE", "RELEASE_VERSION", "IMAGE_VERSION",
    "IMAGE_TAG", "PROJECT_VERSION", "SERVICE_VERSION", "GIT_TAG", "GIT_VERSION", "TAG",
}
_DEV_DEFAULTS = {"", "dev", "develop", "development", "latest", "unknown", "local", "snapshot",
                 "0.0.0", "0.0.0-dev", "none", "main", "master", "undefined"}
_CONFIG_ONLY = {"label", "cmd", "entrypoint", "expose", "healthcheck", "stopsignal",
                "maintainer", "onbuild", "volume"}


def is_volatile_arg(name: str, default: str | None) -> bool:
    upper = name.upper()
    if upper in _VOLATILE:
        return True
    if upper in _VERSIONISH:
        return default is None or default.strip().lower() in _DEV_DEFAULTS
    return False


@check("volatile-arg-early")
def volatile_arg_early(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for stage in model.stages:
        instrs = stage.instructions
        for ai, arg in enumerate(instrs):
            if arg.keyword != "arg":
                continue
            pairs = arg_pairs(arg)
            for name, default in pairs:
                if not is_volatile_arg(name, default):
                    continue
                use = None
                carriers = {name}  # the ARG, and ENV variables set from it
                via_env: list[str] = []
                affected: list[Instruction] = []
                for j in range(ai + 1, len(instrs)):
                    instr = instrs[j]
                    used = bool(carriers & referenced_vars(instr.full_text()))
                    if instr.keyword == "arg" and name in [n for n, _ in arg_pairs(instr)]:
                        use = j  # declared again: that one is the declaration that counts
                        break
                    if used and instr.keyword == "env":
                        # ENV copies the value into the image config: every later step
                        # (COPY and ADD included) now depends on it
                        names = [n for n, v in env_pairs(instr, raw=True)
                                 if carriers & referenced_vars(v)]
                        carriers.update(names)
                        via_env.extend(names)
                        continue
                    if used:
                        use = j
                        break
                    if instr.keyword == "run" or (
                        via_env and instr.keyword in ("copy", "add")
                    ):
                        affected.append(instr)
                if not affected:
                    continue
                first = affected[0]
                where = (
                    f"its first use at line {instrs[use].line}" if use is not None
                    else "the end of the stage (it is never used)"
                )
                message = (
                    f"ARG {name} changes on every build and is declared before "
                    f"{len(affected)} build step(s) (first at line {first.line}): BuildKit puts "
                    "declared ARGs in the environment of every later RUN, so they all miss "
                    "the cache"
                )
                if via_env:
                    message += f" (it is copied into ENV {', '.join(via_env)})"
                fix = None
                if via_env:
                    pass  # moving the ENV too changes the environment of later steps
                elif len(pairs) == 1 and use is not None and instrs[use].keyword != "arg":
                    target = instrs[use]
                    fix = Fix(
                        f"move ARG {name} to just before line {target.line}",
                        (
                            LineEdit(target.line, target.line - 1, instruction_text(model, arg)),
                            LineEdit(arg.line, arg.end_line, ""),
                        ),
                    )
                elif len(pairs) == 1 and use is None:
                    last = instrs[-1]
                    fix = Fix(
                        f"move ARG {name} to the end of the stage",
                        (
                            LineEdit(arg.line, arg.end_line, ""),
                            LineEdit(last.end_line + 1, last.end_line,
                                     instruction_text(model, arg)),
                        ),
                    )
                hint = f"declare ARG {name} just before {where}"
                if via_env:
                    hint += f", together with the ENV that copies it ({', '.join(via_env)})"
                if fix is not None:
                    hint += " (fixable with --fix)"
                yield finding(inp, "volatile-arg-early", arg, message, hint, fix)


# --------------------------------------------------------------------------- cache mounts

_CACHE_KEYS: dict[str, tuple[str, ...]] = {
    "pip": ("pip", "/root/.cache", "pypoetry", "pipenv"),
    "uv": ("uv", "/root/.cache"),
    "poetry": ("pypoetry", "pip", "/root/.cache", "poetry"),
    "pipenv": ("pipenv", "pip", "/root/.cache"),
    "npm": ("npm",),
    "yarn": ("yarn",),
    "pnpm": ("pnpm",),
    "apt": ("/var/cache/apt", "/var/lib/apt"),
    "apk": ("apk",),
    "go": ("/go/pkg/mod", "go-build", "gocache", "/root/.cache/go", "gomod", "pkg/mod"),
    "cargo": ("cargo", "registry"),
    "bundle": ("bundle", "gem"),
    "composer": ("composer",),
    "maven": (".m2", "maven"),
    "gradle": ("gradle",),
}
_KNOWN_FRAGMENTS = tuple(k for keys in _CACHE_KEYS.values() for k in keys)
_ENV_CACHE = {
    "pip": ("PIP_CACHE_DIR",), "uv": ("UV_CACHE_DIR",), "npm": ("npm_config_cache",
    "NPM_CONFIG_CACHE"), "yarn": ("YARN_CACHE_FOLDER",), "pnpm": ("PNPM_STORE_DIR",),
    "go": ("GOMODCACHE",), "composer": ("COMPOSER_CACHE_DIR",),
    "gradle": ("GRADLE_USER_HOME",), "poetry": ("POETRY_CACHE_DIR",),
}
_OPT_OUT_ENV = {
    "pip": ("PIP_NO_CACHE_DIR",), "uv": ("UV_NO_CACHE",), "poetry": ("POETRY_NO_CACHE",),
    "pipenv": ("PIP_NO_CACHE_DIR",), "composer": ("COMPOSER_NO_CACHE",),
}


def _targets_for(manager: str, home: str, env: dict[str, str], base: str) -> list[str]:
    for var in _ENV_CACHE.get(manager, ()):
        if env.get(var, "").startswith("/"):
            return [env[var]]
    image = base.lower().rsplit("/", 1)[-1]
    go_root = "/go" if image.startswith("golang") or env.get("GOPATH") == "/go" else f"{home}/go"
    cargo = env.get("CARGO_HOME") or ("/usr/local/cargo" if image.startswith("rust")
                                      else f"{home}/.cargo")
    table = {
        "pip": [f"{home}/.cache/pip"],
        "uv": [f"{home}/.cache/uv"],
        "poetry": [f"{home}/.cache/pypoetry"],
        "pipenv": [f"{home}/.cache/pipenv"],
        "npm": [f"{home}/.npm"],
        "yarn": ["/usr/local/share/.cache/yarn" if home == "/root" else f"{home}/.cache/yarn"],
        "pnpm": [f"{home}/.local/share/pnpm/store"],
        "apt": ["/var/cache/apt", "/var/lib/apt"],
        "apk": ["/var/cache/apk"],
        "go": [f"{go_root}/pkg/mod", f"{home}/.cache/go-build"],
        "cargo": [f"{cargo}/registry"],
        "bundle": ["/usr/local/bundle/cache" if home == "/root" else f"{home}/.bundle/cache"],
        "composer": [f"{home}/.composer/cache" if home == "/root" else f"{home}/.cache/composer"],
        "maven": [f"{home}/.m2"],
        "gradle": [f"{home}/.gradle"],
    }
    return table[manager]


def _user_home(stage: Stage, before: int, model: Model) -> tuple[str, str] | None:
    """(home, uid) of the USER in effect, ``("/root", "")`` for root; None if unclear."""
    user = None
    for index in reversed(model.chain(stage.index)):
        instrs = model.stages[index].instructions
        limit = before if index == stage.index else len(instrs)
        for instr in instrs[:limit]:
            if instr.keyword == "user" and instr.args:
                user = instr.args[0].split(":")[0]
    if user is None or user in ("root", "0"):
        return ("/root", "")
    if "$" in user:
        return None
    uid = ""
    for instr in stage.instructions[:before]:
        if instr.keyword != "run":
            continue
        m = re.search(r"(?:useradd|adduser)\b[^&;|]*?(?:-u|--uid)[ =]?(\d+)[^&;|]*\b"
                      + re.escape(user) + r"\b", instr.script())
        if m:
            uid = m.group(1)
    if user.isdigit():
        return None
    return (f"/home/{user}", uid) if uid else None


def _opted_out(install: Install, script: str, env: dict[str, str]) -> bool:
    if install.no_cache:
        return True
    for words in split_commands(script):
        if install.words == words or install.words[0] == words[0]:
            assigned = assignments(words)
            if any(v in assigned for v in _OPT_OUT_ENV.get(install.manager, ())):
                return True
    for var in _OPT_OUT_ENV.get(install.manager, ()):
        if env.get(var, "").lower() not in ("", "0", "false", "off", "no"):
            return True
    m = install.manager
    if _removes_cache(script, m):
        return True
    if m == "apt":
        return removes_path(script, "/var/lib/apt/lists") or runs(script, "apt-get", "clean")
    if m == "apk":
        return removes_path(script, "/var/cache/apk")
    if m == "npm":
        return runs(script, "npm", "cache", "clean") or removes_path(script, "/root/.npm")
    if m == "yarn":
        return runs(script, "yarn", "cache", "clean")
    if m == "pnpm":
        return runs(script, "pnpm", "store", "prune")
    if m in ("pip", "uv", "poetry", "pipenv"):
        return removes_path(script, "/root/.cache") or runs(script, "pip", "cache", "purge")
    if m == "go":
        return runs(script, "go", "clean")
    if m == "composer":
        return runs(script, "composer", "clear-cache") or runs(script, "composer", "clearcache")
    if m == "bundle":
        return removes_path(script, "/usr/local/bundle/cache")
    if m == "maven":
        return removes_path(script, "/root/.m2")
    return False


def _removes_cache(script: str, manager: str) -> bool:
    """``rm -rf`` of something that is clearly this manager's cache, e.g.
    ``"${BUNDLE_PATH}"/ruby/*/cache`` or ``~/.cache/pip``."""
    keys = [k.lower().strip("/") for k in _CACHE_KEYS.get(manager, ())]
    for words in split_commands(script):
        if program(words[0]) != "rm":
            continue
        for arg in words[1:]:
            low = arg.lower()
            if arg.startswith("-") or "cache" not in low:
                continue
            if any(k and k in low for k in keys):
                return True
    return False


def _covered(manager: str, targets: list[str]) -> bool:
    keys = _CACHE_KEYS.get(manager, ())
    if any(any(k in t for k in keys) for t in targets):
        return True
    # a cache mount at a path we do not recognise: assume the author configured the tool
    return any(not any(k in t for k in _KNOWN_FRAGMENTS) for t in targets)


@check("missing-cache-mount")
def missing_cache_mount(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for stage in model.stages:
        for index, run in enumerate(stage.instructions):
            if run.keyword != "run":
                continue
            script = run.script()
            installs = [i for i in find_installs(script) if i.manager in _CACHE_KEYS]
            if not installs:
                continue
            mounts = run.mounts()
            cache_targets = [m.get("target", "") for m in mounts if m.get("type") == "cache"]
            env = {}
            for idx in reversed(model.chain(stage.index)):
                st = model.stages[idx]
                env.update(_stage_env(st, index if idx == stage.index else len(st.instructions)))
            missing: list[Install] = []
            for inst in installs:
                if inst.bootstrap_only or _opted_out(inst, script, env):
                    continue
                if inst.manager == "poetry" and "--only-root" in inst.words:
                    continue  # installs the project itself: nothing is downloaded
                if cache_targets and _covered(inst.manager, cache_targets):
                    continue
                if inst.manager not in [m.manager for m in missing]:
                    missing.append(inst)
            if not missing:
                continue
            names = ", ".join(f"`{m.text()}`" for m in missing)
            message = (
                f"{names} starts from an empty package cache whenever this step re-runs; a cache "
                "mount keeps the download cache between builds without adding it to the image"
            )
            fix = _cache_mount_fix(inp, stage, index, run, missing, env)
            targets = [t for m in missing for t in _targets_for(m.manager, "/root", env,
                                                                  _root_base(model, stage))]
            hint = "add " + " ".join(f"--mount=type=cache,target={t}" for t in targets)
            if any(m.manager == "apt" for m in missing):
                hint += (" (with sharing=locked, and remove /etc/apt/apt.conf.d/docker-clean so "
                         "apt keeps the downloaded packages)")
            if fix is not None:
                hint += " (fixable with --fix)"
            yield finding(inp, "missing-cache-mount", run, message, hint, fix)


def _root_base(model: Model, stage: Stage) -> str:
    return model.stages[model.chain(stage.index)[-1]].base


def _cache_mount_fix(
    inp: LintInput, stage: Stage, index: int, run: Instruction, missing: list[Install],
    env: dict[str, str],
) -> Fix | None:
    model = inp.model
    user = _user_home(stage, index, model)
    if user is None or run.node.is_json:
        return None
    home, uid = user
    mounts: list[str] = []
    for inst in missing:
        for target in _targets_for(inst.manager, home, env, _root_base(model, stage)):
            spec = f"--mount=type=cache,target={target}"
            if inst.manager in ("apt", "apk"):
                spec += ",sharing=locked"
            elif uid and target.startswith(home):
                spec += f",uid={uid}"
            mounts.append(spec)
    edit = insert_after_keyword(model, run, " ".join(dict.fromkeys(mounts)))
    if edit is None:
        return None
    return Fix("add cache mounts", (edit,))


# --------------------------------------------------------------------------- apt lists

@check("apt-lists-left")
def apt_lists_left(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    final = model.final_stages()
    for stage in model.stages:
        if stage.index not in final:
            continue
        for run in stage.instructions:
            if run.keyword != "run":
                continue
            script = run.script()
            installs = [i for i in find_installs(script) if i.manager == "apt"]
            updates = runs(script, "apt-get", "update") or runs(script, "apt", "update")
            # only `apt-get update` writes the lists: an install-only RUN uses the lists
            # an earlier layer left (reported there)
            if not updates:
                continue
            if removes_path(script, "/var/lib/apt/lists"):
                continue
            mounted = [m.get("target", "").rstrip("/") for m in run.mounts()
                       if m.get("type") in ("cache", "tmpfs")]
            if any(t in ("/var/lib/apt", "/var/lib/apt/lists") for t in mounted):
                continue
            edit = None if run.node.is_json else append_to_instruction(
                model, run, " && rm -rf /var/lib/apt/lists/*")
            fix = Fix("remove the apt lists in the same RUN", (edit,)) if edit else None
            hint = "end the RUN with `&& rm -rf /var/lib/apt/lists/*`"
            if fix is not None:
                hint += " (fixable with --fix)"
            yield finding(
                inp, "apt-lists-left", run,
                f"`{installs[0].text() if installs else 'apt-get update'}` leaves the package "
                "lists in /var/lib/apt/lists in this "
                "layer; deleting them in a later step cannot shrink the image",
                hint, fix,
            )


__all__ = ["broad_sources", "flag_values", "is_manifest", "is_volatile_arg"]
