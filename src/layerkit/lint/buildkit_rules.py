"""Rules that mirror BuildKit's built-in checks: unknown-instruction,
json-args-recommended (JSONArgsRecommended), workdir-relative-path
(WorkdirRelativePath), undefined-variable (UndefinedVar) and duplicate-stage-name
(DuplicateStageName)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from layerkit.lint.findings import Finding
from layerkit.lint.model import Instruction, Model, Stage, arg_pairs, env_pairs, referenced_vars
from layerkit.lint.registry import LintInput, check, finding

try:
    from layerkit.dockerfile.keywords import INSTRUCTIONS, did_you_mean
except ImportError:  # pragma: no cover - the parser package ships keywords
    INSTRUCTIONS = frozenset({
        "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
        "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
        "workdir",
    })

    def did_you_mean(word: str) -> str | None:
        found = difflib.get_close_matches(word.lower(), sorted(INSTRUCTIONS), n=1, cutoff=0.6)
        return found[0].upper() if found else None


@check("unknown-instruction")
def unknown_instruction(inp: LintInput) -> Iterator[Finding]:
    for instr in inp.model.all_instructions():
        nodes = [instr.node]
        if instr.keyword == "onbuild" and instr.node.next and instr.node.next[0].children:
            nodes = [instr.node.next[0].children[0]]
        for node in nodes:
            if node.value.lower() in INSTRUCTIONS:
                continue
            guess = did_you_mean(node.value)
            extra = f" (did you mean {guess}?)" if guess else ""
            yield finding(
                inp, "unknown-instruction", instr,
                f"unknown instruction: {node.value.upper()}{extra}",
                f"replace it with {guess}" if guess else "see the Dockerfile reference",
            )


def _shell_set(model: Model, stage: Stage, before: int) -> bool:
    for index in model.chain(stage.index):
        instrs = model.stages[index].instructions
        limit = before if index == stage.index else len(instrs)
        if any(i.keyword == "shell" for i in instrs[:limit]):
            return True
    return False


@check("json-args-recommended")
def json_args_recommended(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for stage in model.stages:
        for index, instr in enumerate(stage.instructions):
            if instr.keyword not in ("cmd", "entrypoint") or instr.node.is_json:
                continue
            if _shell_set(model, stage, index):
                continue
            kw = instr.keyword.upper()
            yield finding(
                inp, "json-args-recommended", instr,
                f"JSON arguments recommended for {kw} to prevent unintended behavior related "
                "to OS signals",
                f'write it in exec form, e.g. {kw} ["executable", "arg"], or set SHELL '
                "explicitly if a shell is wanted",
            )


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or (len(path) >= 2 and path[1] == ":")


@check("workdir-relative-path")
def workdir_relative_path(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for stage in model.stages:
        inherited = any(
            i.keyword == "workdir"
            for idx in model.chain(stage.index)[1:]
            for i in model.stages[idx].instructions
        )
        if inherited:
            continue
        env: dict[str, str | None] = {}
        for instr in stage.instructions:
            if instr.keyword == "arg":
                env.update(arg_pairs(instr))
            elif instr.keyword == "env":
                env.update(env_pairs(instr))
            if instr.keyword != "workdir" or not instr.args:
                continue
            path = instr.args[0].strip("\"'")
            if "$" in path:
                from layerkit.lint.image_rules import expand_simple

                expanded = expand_simple(path, env)
                if expanded is None:
                    break
                path = expanded
            if path and not _is_absolute(path):
                yield finding(
                    inp, "workdir-relative-path", instr,
                    f'Relative workdir "{path}" can have unexpected results if the base image '
                    "changes",
                    f"use an absolute path, e.g. WORKDIR /{path.lstrip('./')}",
                )
            break


# --------------------------------------------------------------------------- UndefinedVar

# environment variables the usual registry base images define: an unknown base image
# may define them, so they are never reported for such stages
COMMON_IMAGE_ENV = frozenset({
    "PATH", "HOME", "HOSTNAME", "LANG", "LANGUAGE", "LC_ALL", "TERM", "USER", "PWD", "SHELL",
    "TZ", "JAVA_HOME", "JAVA_VERSION", "JDK_VERSION", "JRE_HOME", "MAVEN_HOME", "MAVEN_CONFIG",
    "MAVEN_VERSION", "GRADLE_HOME", "GRADLE_VERSION", "GOPATH", "GOROOT", "GOLANG_VERSION",
    "GOTOOLCHAIN", "NODE_VERSION", "YARN_VERSION", "NODE_ENV", "NPM_CONFIG_PREFIX",
    "PYTHON_VERSION", "PYTHON_SHA256", "PYTHON_PIP_VERSION", "PYTHON_SETUPTOOLS_VERSION",
    "PYTHON_GET_PIP_URL", "PYTHON_GET_PIP_SHA256", "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED", "GPG_KEY", "RUBY_VERSION", "RUBY_MAJOR", "RUBY_DOWNLOAD_SHA256",
    "RUBY_DOWNLOAD_URL", "GEM_HOME", "BUNDLE_PATH", "BUNDLE_APP_CONFIG",
    "BUNDLE_SILENCE_ROOT_WARNING", "RUSTUP_HOME", "CARGO_HOME", "RUST_VERSION", "PHP_VERSION",
    "PHP_INI_DIR", "PHPIZE_DEPS", "PHP_URL", "PHP_ASC_URL", "PHP_SHA256", "PHP_CFLAGS",
    "PHP_CPPFLAGS", "PHP_LDFLAGS", "APACHE_CONFDIR", "APACHE_ENVVARS", "NGINX_VERSION",
    "NJS_VERSION", "PKG_RELEASE", "DOTNET_VERSION", "ASPNET_VERSION", "ASPNETCORE_URLS",
    "ASPNETCORE_HTTP_PORTS", "DOTNET_RUNNING_IN_CONTAINER", "APP_UID", "CATALINA_HOME",
    "TOMCAT_VERSION", "TOMCAT_MAJOR", "JENKINS_HOME", "CONDA_DIR", "MAMBA_ROOT_PREFIX",
    "VIRTUAL_ENV", "DEBIAN_FRONTEND", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_VERSION", "LD_LIBRARY_PATH", "LIBRARY_PATH", "PKG_CONFIG_PATH", "ERLANG_VERSION",
    "ELIXIR_VERSION", "OTP_VERSION", "REBAR3_VERSION", "POSTGRES_VERSION", "PG_MAJOR",
    "PG_VERSION", "PGDATA", "MYSQL_VERSION", "MYSQL_MAJOR", "REDIS_VERSION", "MONGO_VERSION",
    "DENO_VERSION", "DENO_INSTALL", "BUN_INSTALL", "HUGO_VERSION", "DOCKER_VERSION",
    "SBT_VERSION", "SCALA_VERSION", "KOTLIN_VERSION", "SWIFT_VERSION", "CONDA_VERSION",
    "PYENV_ROOT", "POETRY_HOME", "POETRY_VERSION", "UV_VERSION", "PIP_NO_CACHE_DIR",
    "PYTHONPATH", "NODE_PATH", "CLASSPATH", "MANPATH", "CFLAGS", "CXXFLAGS", "LDFLAGS",
    "CPPFLAGS", "GOFLAGS", "RUSTFLAGS", "JAVA_OPTS", "NODE_OPTIONS", "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME", "XDG_DATA_HOME", "UID", "GID",
})
_ALWAYS = {"PATH"}  # BuildKit sets a default PATH even FROM scratch


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and
    swaps of neighbours each cost one."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _suggest(name: str, options: set[str]) -> str | None:
    """A defined name that ``name`` is probably a typo of (like BuildKit's suggest)."""
    if len(name) < 3:
        return None
    limit = 1 if len(name) <= 6 else 2
    best: tuple[int, str] | None = None
    for option in sorted(options):
        if option == name:
            continue
        dist = 0 if option.lower() == name.lower() else edit_distance(name, option)
        if dist <= limit and (best is None or dist < best[0]):
            best = (dist, option)
    return best[1] if best else None


def _checked_words(instr: Instruction) -> list[str]:
    kw = instr.keyword
    if kw == "arg":
        return [v for _, v in arg_pairs(instr, raw=True) if v]
    if kw == "env":
        return [v for _, v in env_pairs(instr, raw=True)]
    if kw == "label":
        return [w for pair in env_pairs(instr, raw=True) for w in pair]
    if kw in ("copy", "add"):
        words = list(instr.args)
        if instr.node.heredocs:
            words = [w for w in words if not w.startswith("<<")]
        for flag in instr.flags:
            name = flag.lstrip("-").split("=")[0].lower()
            if name in ("chown", "chmod", "from"):
                words.append(flag.split("=", 1)[-1])
        return words
    if kw in ("workdir", "user", "expose", "volume", "stopsignal"):
        return list(instr.args)
    return []


def _unmatched(word: str, defined: set[str], escape: str) -> set[str]:
    try:
        from layerkit.dockerfile.shell import ShellLex

        env = dict.fromkeys(defined, "x")
        return set(ShellLex(escape).process_word_with_matches(word, env).unmatched)
    except ImportError:  # pragma: no cover
        return {v for v in referenced_vars(word.replace(escape + "$", "")) if v not in defined}
    except Exception:
        return set()  # an expansion error is the parser's business, not this rule's


@check("undefined-variable")
def undefined_variable(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    global_names = set(model.global_defaults())
    escape = model.result.escape_token
    # names declared in some stage: used in another stage that does not declare them,
    # they are a scope mistake even when the base image's environment is unknown
    per_stage: list[set[str]] = []
    for st in model.stages:
        names: set[str] = set()
        for instr in st.instructions:
            if instr.keyword == "arg":
                names.update(n for n, _ in arg_pairs(instr))
            elif instr.keyword == "env":
                names.update(n for n, _ in env_pairs(instr))
        per_stage.append(names)
    for stage in model.stages:
        chain = model.chain(stage.index)
        root = model.stages[chain[-1]]
        known_base = root.base.lower() == "scratch"
        defined: set[str] = set(_ALWAYS)
        for idx in reversed(chain[1:]):
            for instr in model.stages[idx].instructions:
                if instr.keyword == "arg":
                    defined.update(n for n, _ in arg_pairs(instr))
                elif instr.keyword == "env":
                    defined.update(n for n, _ in env_pairs(instr))
        image = root.base.lower()
        elsewhere = set().union(*(names for i, names in enumerate(per_stage)
                                  if i not in chain))
        for instr in stage.instructions:
            reported: set[str] = set()
            for word in _checked_words(instr):
                for name in sorted(_unmatched(word, defined, escape)):
                    if name in reported or name in ("BUILDKIT_SBOM_SCAN_CONTEXT",
                                                    "BUILDKIT_SBOM_SCAN_STAGE"):
                        continue
                    guess = _suggest(name, defined | {"HOME"})
                    if not known_base:
                        if name in COMMON_IMAGE_ENV:
                            continue
                        prefix = name.split("_")[0].lower()
                        redeclare = name in global_names and prefix not in image
                        if not redeclare and guess is None and name not in elsewhere:
                            continue
                    reported.add(name)
                    extra = f" (did you mean ${guess}?)" if guess else ""
                    if name in global_names:
                        hint = (
                            f"declare `ARG {name}` inside this stage: a global ARG is only in "
                            "scope in FROM lines until it is declared again"
                        )
                    elif name in elsewhere:
                        hint = (
                            f"${name} is declared in another stage; ARG and ENV do not cross "
                            f"stages: declare it in this one before line {instr.line}"
                        )
                    else:
                        hint = f"declare it with ARG or ENV before line {instr.line}"
                    yield finding(
                        inp, "undefined-variable", instr,
                        f"Usage of undefined variable ${name}{extra}", hint,
                    )
            if instr.keyword == "arg":
                defined.update(n for n, _ in arg_pairs(instr))
            elif instr.keyword == "env":
                defined.update(n for n, _ in env_pairs(instr))


@check("duplicate-stage-name")
def duplicate_stage_name(inp: LintInput) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for stage in inp.model.stages:
        if not stage.name:
            continue
        if stage.name in seen:
            yield finding(
                inp, "duplicate-stage-name", (stage.line, stage.from_node.end_line or stage.line),
                f'Duplicate stage name "{stage.name}", stage names should be unique '
                f"(first defined at line {seen[stage.name]})",
                "rename one of the stages and the COPY --from / FROM references to it",
            )
        else:
            seen[stage.name] = stage.line
