"""Rules that look at the build context directory: missing-dockerignore and
secret-in-context. Both only report paths that exist and that a COPY/ADD from the
context would actually send."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterator
from pathlib import Path

from layerkit.lint.contextscan import ContextView, names_explicitly, source_covers
from layerkit.lint.findings import FileWrite, Finding, Fix
from layerkit.lint.model import Instruction
from layerkit.lint.registry import LintInput, check, finding

LARGE_FILE = 10 * 1024 * 1024
_HEAVY_DIRS = {
    ".git": "version-control history", ".hg": "version-control history",
    ".svn": "version-control history", "node_modules": "installed node packages",
    ".venv": "a virtualenv", "venv": "a virtualenv", "__pycache__": "Python bytecode",
    ".pytest_cache": "test cache", ".mypy_cache": "type-checker cache",
    ".ruff_cache": "linter cache", ".tox": "tox environments", ".nox": "nox environments",
    "dist": "build output", "build": "build output", "target": "build output",
    ".next": "build output", ".nuxt": "build output", "coverage": "coverage reports",
    ".coverage": "coverage data", "htmlcov": "coverage reports", ".gradle": "Gradle cache",
    ".terraform": "Terraform providers", ".parcel-cache": "build cache",
    ".turbo": "build cache", ".cache": "build cache",
}
_SKIP_DESCEND = frozenset(_HEAVY_DIRS) | {"site-packages", "vendor"}
# names that are build output in most projects but source in some (Go's build/ holds
# packaging scripts): trusted only when .gitignore agrees, or when there is none
_AMBIGUOUS = {"build", "dist", "target", "coverage", ".cache"}


def _gitignored_names(root: Path) -> set[str] | None:
    """Top-level names the context's .gitignore ignores; None without a .gitignore."""
    path = root / ".gitignore"
    if not path.is_file():
        return None
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        names.add(line.strip("/").removeprefix("**/").rstrip("/*"))
    return names


def _context_copies(inp: LintInput) -> list[tuple[Instruction, list[str]]]:
    out: list[tuple[Instruction, list[str]]] = []
    for instr in inp.model.all_instructions():
        node = instr
        if instr.keyword == "onbuild":
            continue
        if node.keyword in ("copy", "add") and node.from_context():
            sources, _ = node.copy_parts()
            sources = [s for s in sources if "://" not in s and not s.startswith("git@")]
            if sources:
                out.append((node, sources))
    return out


def _sender(copies: list[tuple[Instruction, list[str]]], path: str) -> Instruction | None:
    for instr, sources in copies:
        if any(source_covers(s, path) for s in sources):
            return instr
    return None


def _explicit(copies: list[tuple[Instruction, list[str]]], path: str) -> bool:
    return any(names_explicitly(s, path) for _, sources in copies for s in sources)


def _ignore_target(ctx: ContextView) -> Path:
    return ctx.ignore_file or (ctx.root / ".dockerignore")


def _extend_ignore(ctx: ContextView, entries: list[str], why: str) -> FileWrite:
    target = _ignore_target(ctx)
    current = target.read_text(encoding="utf-8") if target.is_file() else ""
    nl = "\r\n" if "\r\n" in current else "\n"
    if current and not current.endswith("\n"):
        current += nl
    block = f"# added by layerkit check: {why}{nl}" + "".join(e + nl for e in entries)
    return FileWrite(str(target), current + block)


def _heavy_paths(ctx: ContextView) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    gitignored = _gitignored_names(ctx.root)
    for rel, is_dir in ctx.walk(skip_dirs=_SKIP_DESCEND):
        name = posixpath.basename(rel)
        if is_dir and name in _AMBIGUOUS and gitignored is not None and not (
            name in gitignored or rel in gitignored
        ):
            continue
        if is_dir and name in _HEAVY_DIRS:
            parent = posixpath.dirname(rel)
            if any(parent == p or parent.startswith(p + "/") for p, _ in found):
                continue
            found.append((rel, _HEAVY_DIRS[name]))
        elif name == ".git" and not is_dir:
            found.append((rel, "version-control metadata"))
        elif is_dir and (ctx.root / rel / "pyvenv.cfg").is_file():
            found.append((rel, "a virtualenv"))
        elif not is_dir:
            try:
                size = (ctx.root / rel).stat().st_size
            except OSError:
                continue
            if size > LARGE_FILE:
                found.append((rel, f"a {size // (1024 * 1024)} MB file"))
    return found


@check("missing-dockerignore")
def missing_dockerignore(inp: LintInput) -> Iterator[Finding]:
    ctx = inp.context
    if ctx is None:
        return
    copies = _context_copies(inp)
    if not copies:
        return
    sent: list[tuple[str, str, Instruction]] = []
    for rel, why in _heavy_paths(ctx):
        if _explicit(copies, rel):
            continue  # the Dockerfile copies it by name: it is wanted
        sender = _sender(copies, rel)
        if sender is not None:
            sent.append((rel, why, sender))
    if not sent:
        return
    first = min((s[2] for s in sent), key=lambda i: i.line)
    listing = ", ".join(f"{rel} ({why})" for rel, why, _ in sent[:6])
    if len(sent) > 6:
        listing += f" and {len(sent) - 6} more"
    entries = []
    for rel, _why, _ in sent:
        name = posixpath.basename(rel)
        entries.append(f"**/{name}" if name == "__pycache__" else rel)
    entries = list(dict.fromkeys(entries))
    having = f"{_ignore_target(ctx).name} does not exclude" if ctx.ignore_file else (
        "there is no .dockerignore, so the context includes")
    yield finding(
        inp, "missing-dockerignore", first,
        f"{having} {listing}: {inp.model.quote(first)} sends them, so they are hashed into the "
        "cache key and copied into the image",
        f"add {', '.join(entries[:4])} to {_ignore_target(ctx).name} (fixable with --fix)",
        Fix("exclude them in .dockerignore",
            files=(_extend_ignore(ctx, entries, "not needed in the image"),)),
    )


# --------------------------------------------------------------------------- secrets

_SECRET_NAMES = {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".pypirc", ".netrc", "_netrc",
                 ".git-credentials", "credentials", ".htpasswd", ".dockercfg"}
_SECRET_GLOBS = ("*.p12", "*.pfx", "*.jks", "*.keystore")
_ENV_SAFE = ("example", "sample", "template", "dist", "defaults", "default", "tmpl", "schema",
             "test.example")


def _read_head(path: Path, size: int = 65536) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def secret_kind(rel: str, root: Path) -> str | None:
    """Why the file at ``rel`` is a secret, or None."""
    name = posixpath.basename(rel)
    lower = name.lower()
    path = root / rel
    if lower == ".env" or (lower.startswith(".env.") and
                           not any(lower.endswith("." + s) for s in _ENV_SAFE)):
        return "environment file"
    if lower.endswith(".env") and lower[:-4] and lower[:-4].lstrip(".") in (
            "prod", "production", "local", "secret", "secrets"):
        return "environment file"
    if lower in _SECRET_NAMES:
        if lower == "credentials" and "/" not in rel and not rel.startswith("."):
            head = _read_head(path, 4096)
            if b"aws_" not in head.lower() and b"[" not in head:
                return None
        return "credentials file" if not lower.startswith("id_") else "SSH private key"
    if lower == ".npmrc":
        text = _read_head(path).decode("utf-8", "replace")
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if any(t in key for t in ("_authToken", "_auth", "_password")) and value.strip() \
                    and "${" not in value:
                return ".npmrc with an auth token"
        return None
    if any(fnmatch.fnmatchcase(lower, g) for g in _SECRET_GLOBS):
        return "key store"
    if lower.endswith((".pem", ".key")):
        head = _read_head(path)
        if lower.endswith(".pem") and b"CERTIFICATE" in head and b"PRIVATE KEY" not in head:
            return None  # certificates are public
        if head.startswith(b"PK\x03\x04"):
            return None  # a Keynote document, not a key
        return "private key"
    return None


@check("secret-in-context")
def secret_in_context(inp: LintInput) -> Iterator[Finding]:
    ctx = inp.context
    if ctx is None:
        return
    copies = _context_copies(inp)
    if not copies:
        return
    found: list[tuple[str, str, Instruction]] = []
    for rel, is_dir in ctx.walk(skip_dirs=_SKIP_DESCEND):
        if is_dir or (ctx.root / rel).is_symlink():
            continue
        kind = secret_kind(rel, ctx.root)
        if kind is None:
            continue
        for instr, sources in copies:
            broad = [s for s in sources if source_covers(s, rel) and not names_explicitly(s, rel)]
            if broad:
                found.append((rel, kind, instr))
                break
    if not found:
        return
    by_copy: dict[int, list[tuple[str, str, Instruction]]] = {}
    for item in found:
        by_copy.setdefault(item[2].line, []).append(item)
    for _line, items in sorted(by_copy.items()):
        instr = items[0][2]
        listing = ", ".join(f"{rel} ({kind})" for rel, kind, _ in items[:6])
        entries = [rel for rel, _, _ in items]
        yield finding(
            inp, "secret-in-context", instr,
            f"{inp.model.quote(instr)} sends {listing} into the image, where anyone who can "
            "pull it can read them",
            f"add {', '.join(entries[:4])} to {_ignore_target(ctx).name} (fixable with --fix); "
            "pass build-time secrets with RUN --mount=type=secret",
            Fix("exclude the secret files in .dockerignore",
                files=(_extend_ignore(ctx, entries, "secrets must not reach the image"),)),
        )
