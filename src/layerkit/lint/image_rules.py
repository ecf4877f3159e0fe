"""Rules about what goes into the image and how portable the file is:
floating-base-tag, add-for-local-files, mount-without-syntax, secret-in-build-arg
and build-tools-in-final-stage."""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterator

from layerkit.lint.edits import replace_keyword
from layerkit.lint.findings import Finding, Fix, LineEdit
from layerkit.lint.model import Instruction, arg_pairs, env_pairs, flag_values, has_flag
from layerkit.lint.registry import LintInput, check, finding
from layerkit.lint.shellcmd import ALL_PACKAGES, find_installs, removed_packages

# --------------------------------------------------------------------------- base tag

_VAR = re.compile(
    r"\$(?:\{(?P<b>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-+])(?P<word>[^}]*))?\}"
    r"|(?P<p>[A-Za-z_][A-Za-z0-9_]*))"
)


def expand_simple(text: str, values: dict[str, str | None]) -> str | None:
    """Expand ``$X``, ``${X}``, ``${X:-d}``, ``${X:+d}`` with known values.

    Returns None when a variable without a known value decides the result.
    """
    unknown = False

    def repl(m: re.Match[str]) -> str:
        nonlocal unknown
        name = m.group("b") or m.group("p")
        op, word = m.group("op"), m.group("word") or ""
        value = values.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return word
            return value
        if op in (":+", "+"):
            if value is None and name not in values:
                unknown = True
                return ""
            return word if (value or (op == "+" and value is not None)) else ""
        if value is None:
            unknown = True
            return ""
        return value

    out = _VAR.sub(repl, text)
    return None if unknown else out


def split_reference(ref: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest)."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo_last, tag = last.rsplit(":", 1)
        ref = ref[: len(ref) - len(last)] + repo_last
    return ref, tag, digest


@check("floating-base-tag")
def floating_base_tag(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    globals_ = model.global_defaults()
    seen: set[str] = set()
    for stage in model.stages:
        base = stage.base
        earlier = set(seen)
        if stage.name:
            seen.add(stage.name)
        if not base:
            continue
        lowered = base.lower()
        if lowered == "scratch" or lowered in earlier:
            continue
        ref = base
        if "$" in base:
            expanded = expand_simple(base, globals_)
            if expanded is None or not expanded:
                continue  # no default: the value comes from the build command
            ref = expanded
            if ref.lower() in earlier or ref.lower() == "scratch":
                continue
        _repo, tag, digest = split_reference(ref)
        if digest:
            continue
        if tag is None or tag == "latest":
            what = "no tag (so :latest)" if tag is None else "the :latest tag"
            via = f" (from {base})" if ref != base else ""
            yield finding(
                inp, "floating-base-tag", (stage.line, stage.from_node.end_line or stage.line),
                f"FROM {ref}{via} uses {what}: the base changes whenever it is re-pushed, which "
                "invalidates every cached step and makes builds unreproducible",
                "pin a version tag (e.g. python:3.12-slim), ideally with @sha256 digest",
            )


# --------------------------------------------------------------------------- ADD

_ARCHIVE = (
    "*.tar", "*.tar.gz", "*.tgz", "*.tar.bz2", "*.tbz2", "*.tbz", "*.tar.xz", "*.txz",
    "*.tar.zst", "*.tzst", "*.tar.lz", "*.tar.lzma", "*.tlz", "*.tar.lz4", "*.gz", "*.bz2",
    "*.xz", "*.zst", "*.lzma", "*.tar.Z", "*.taz",
)
_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"\x5d\x00\x00")


def _is_remote(src: str) -> bool:
    return bool(re.match(r"^(https?|git|ssh)://", src, re.I)) or src.startswith("git@") or (
        src.endswith(".git") and "://" in src
    )


def _looks_archive(inp: LintInput, src: str) -> bool:
    base = posixpath.basename(src.rstrip("/")).lower()
    if any(fnmatch.fnmatchcase(base, pat.lower()) for pat in _ARCHIVE):
        return True
    ctx = inp.context
    if ctx is not None:
        path = ctx.root / src.lstrip("/")
        try:
            if path.is_file():
                with path.open("rb") as fh:
                    head = fh.read(512)
                if head.startswith(_MAGIC) or head[257:262] == b"ustar":
                    return True
        except OSError:
            return False
    return False


@check("add-for-local-files")
def add_for_local_files(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for instr in model.all_instructions():
        if instr.keyword != "add" or instr.node.heredocs:
            continue
        if any(has_flag(instr.flags, f) for f in ("checksum", "keep-git-dir", "unpack")):
            continue
        sources, _dest = instr.copy_parts()
        if not sources:
            continue
        if any(_is_remote(s) or "$" in s or _looks_archive(inp, s) for s in sources):
            continue
        edit = replace_keyword(model, instr, "COPY")
        fix = Fix("use COPY", (edit,)) if edit else None
        hint = "use COPY, which only copies" + (" (fixable with --fix)" if fix else "")
        yield finding(
            inp, "add-for-local-files", instr,
            f"ADD of local file(s) {', '.join(sources)}: ADD also extracts archives and fetches "
            "URLs, COPY says exactly what happens",
            hint, fix,
        )


# --------------------------------------------------------------------------- syntax

def _needs_frontend(instr: Instruction) -> str | None:
    kw = instr.keyword
    if kw == "onbuild" and instr.node.next and instr.node.next[0].children:
        inner = Instruction(instr.node.next[0].children[0], instr.stage)
        return _needs_frontend(inner)
    if kw == "run":
        for flag in ("mount", "network", "security", "device"):
            if flag_values(instr.flags, flag):
                return f"RUN --{flag}"
    if kw in ("copy", "add"):
        for flag in ("link", "parents", "exclude", "checksum", "keep-git-dir", "unpack"):
            if flag_values(instr.flags, flag):
                return f"{kw.upper()} --{flag}"
    if instr.node.heredocs:
        return f"{kw.upper()} with a heredoc"
    return None


@check("mount-without-syntax")
def mount_without_syntax(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    if model.result.syntax:
        return
    uses = [(i, feat) for i in model.all_instructions() if (feat := _needs_frontend(i))]
    if not uses:
        return
    first = model.lines[0] if model.lines else ""
    nl = "\r\n" if first.endswith("\r\n") else "\n"
    edits = (LineEdit(1, 0, f"# syntax=docker/dockerfile:1{nl}"),)
    fix = Fix("add the syntax directive", edits)
    for instr, feature in uses:
        yield finding(
            inp, "mount-without-syntax", instr,
            f"{feature} needs the Dockerfile 1.x frontend, but there is no "
            "`# syntax=docker/dockerfile:1` directive: older builders reject it",
            "add `# syntax=docker/dockerfile:1` as the first line (fixable with --fix)",
            fix,
        )


# --------------------------------------------------------------------------- secrets

_SECRET_WORDS = {"TOKEN", "PASSWORD", "PASSWD", "PASS", "PWORD", "SECRET", "CREDENTIAL",
                 "CREDENTIALS", "APIKEY", "PASSPHRASE"}
_KEY_QUALIFIERS = {"API", "PRIVATE", "ACCESS", "SECRET", "SIGNING", "ENCRYPTION", "MASTER",
                   "AUTH", "CLIENT", "LICENSE", "SSH", "DEPLOY"}
_NOT_SECRET_LAST = {"FILE", "PATH", "DIR", "URL", "URI", "ENDPOINT", "HOST", "PORT", "NAME",
                    "TYPE", "LENGTH", "DUMMY", "VERSION", "ENABLED", "REQUIRED", "HEADER",
                    "MODE", "PREFIX", "ID_FILE", "LOCATION", "FOLDER", "EXPIRY", "TTL",
                    "TIMEOUT", "FORMAT", "METHOD", "FILES", "SIZE", "POLICY", "ALGORITHM"}


# a last word KEY after one of these names a public or non-secret key
_PUBLIC_KEYS = {"GPG", "PGP", "GNUPG", "PUB", "SORT", "CACHE", "PRIMARY", "PARTITION",
                "FOREIGN", "HOST", "REPO", "APT", "YUM", "RPM", "SIGNATURE", "GROUP", "ROUTING",
                "SHARD", "LOOKUP", "HASH", "DEDUP", "IDEMPOTENCY", "KEYBOARD"}


def is_secret_name(name: str) -> bool:
    """Does an ARG/ENV name look like it carries a secret? (see secret-in-build-arg.md)"""
    words = [w for w in re.split(r"[_\-.]", name.upper()) if w]
    if not words or "PUBLIC" in words or words[-1] in _NOT_SECRET_LAST:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    # BuildKit's words AUTH and KEY: as the last word (NPM_AUTH, JWT_KEY), or KEY after a
    # qualifier anywhere (AWS_ACCESS_KEY_ID); AUTH_DOMAIN or CACHE_KEY are not secrets
    if words[-1] == "AUTH":
        return True
    if words[-1] == "KEY" and (len(words) == 1 or words[-2] not in _PUBLIC_KEYS):
        return True
    return any(w == "KEY" and i > 0 and words[i - 1] in _KEY_QUALIFIERS
               for i, w in enumerate(words))


@check("secret-in-build-arg")
def secret_in_build_arg(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    for instr in model.all_instructions():
        if instr.keyword == "arg":
            names = [n for n, _ in arg_pairs(instr)]
        elif instr.keyword == "env":
            names = [n for n, _ in env_pairs(instr)]
        else:
            continue
        for name in names:
            if is_secret_name(name):
                kw = instr.keyword.upper()
                yield finding(
                    inp, "secret-in-build-arg", instr,
                    f"{kw} {name} looks like a secret: {kw} values are stored in the image "
                    f"{'config' if kw == 'ENV' else 'history and build provenance'}, readable "
                    "by anyone who can pull it",
                    f"pass it with `RUN --mount=type=secret,id={name.lower()}` and "
                    f"`--secret id={name.lower()}` instead",
                )


# --------------------------------------------------------------------------- build tools

_TOOLS = {
    "gcc", "g++", "cc", "c++", "make", "build-essential", "build-base", "clang", "llvm",
    "cmake", "rustc", "cargo", "golang", "golang-go", "go", "musl-dev", "linux-headers",
    "libc-dev", "libc6-dev", "autoconf", "automake", "libtool", "gcc-c++", "ninja-build",
    "meson", "binutils", "gfortran", "dpkg-dev", "kernel-headers", "kernel-devel",
}
_DEV_STAGES = {"dev", "devel", "development", "devcontainer", "test", "tests", "testing", "ci",
               "debug", "lint"}


def _tool_name(pkg: str) -> str | None:
    name = re.split(r"[=<>~]", pkg, maxsplit=1)[0].lower()
    name = name.split(":")[0]
    if name in _TOOLS or re.fullmatch(r"(gcc|g\+\+|clang|llvm)-?[0-9.]+", name):
        return name
    if name.endswith("-dev") or name.endswith("-devel") or name.endswith("-headers"):
        return name
    return None


@check("build-tools-in-final-stage")
def build_tools_in_final_stage(inp: LintInput) -> Iterator[Finding]:
    model = inp.model
    if not model.stages:
        return
    last = model.stages[-1]
    if last.name and last.name in _DEV_STAGES:
        return
    for index in sorted(model.final_stages()):
        stage = model.stages[index]
        for run in stage.instructions:
            if run.keyword != "run":
                continue
            script = run.script()
            removed = removed_packages(script)
            if ALL_PACKAGES in removed:
                continue
            tools: list[str] = []
            for inst in find_installs(script):
                if inst.kind != "system":
                    continue
                if inst.virtual and inst.virtual in removed:
                    continue
                for pkg in inst.packages:
                    name = _tool_name(pkg)
                    if name and name not in removed and pkg not in removed:
                        tools.append(name)
            if not tools:
                continue
            tools = list(dict.fromkeys(tools))
            shown = ", ".join(tools[:5]) + (" ..." if len(tools) > 5 else "")
            single = len(model.stages) == 1
            yield finding(
                inp, "build-tools-in-final-stage", run,
                f"build tools ({shown}) are installed in the "
                f"{'only stage' if single else 'final image'}: they are needed to build, not "
                "to run, and make the image larger and its attack surface wider",
                "build in a separate `AS build` stage and COPY --from=build only the result"
                + ("" if single else ", or purge them in the same RUN"),
            )
