"""Loads the rule catalogue: ``rules/<id>.md`` (package data) into ``RuleDoc`` records.

The markdown files are the single source of truth for a rule's id, title, severity
and explanation; ``docs/rules/`` holds identical copies (a unit test keeps them so).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from layerkit.errors import LintError
from layerkit.fastclass import dataclass

SEVERITIES = ("error", "warning", "info")
DOCS_URI = "https://github.com/layerkit/layerkit/blob/main/docs/rules/{id}.md"

_FRONT = re.compile(r"\A---\n(?P<meta>.*?)\n---\n(?P<body>.*)\Z", re.S)
_SECTION = re.compile(r"^## (?P<name>[A-Za-z]+)\n", re.M)


@dataclass(frozen=True)
class RuleDoc:
    """One rule as documented: what it finds, how bad it is, and what to do."""

    id: str
    title: str
    severity: str
    why: str
    bad: str
    good: str
    fix: str
    fixable: bool = False
    buildkit: str | None = None

    @property
    def help_uri(self) -> str:
        return DOCS_URI.format(id=self.id)


def parse_rule_doc(text: str, source: str = "<rule>") -> RuleDoc:
    """Turn one rule markdown file into a ``RuleDoc``."""
    match = _FRONT.match(text.replace("\r\n", "\n"))
    if match is None:
        raise LintError(f"{source}: missing front matter", hint="start with a --- block")
    meta: dict[str, str] = {}
    for line in match.group("meta").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            meta[key.strip()] = value.strip()
    body = match.group("body")
    sections: dict[str, str] = {}
    heads = list(_SECTION.finditer(body))
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        sections[head.group("name").lower()] = body[head.end() : end].strip()
    for key in ("id", "title", "severity"):
        if key not in meta:
            raise LintError(f"{source}: front matter lacks {key!r}")
    if meta["severity"] not in SEVERITIES:
        raise LintError(f"{source}: severity must be one of {', '.join(SEVERITIES)}")
    for name in ("why", "bad", "good", "fix"):
        if name not in sections:
            raise LintError(f"{source}: missing section '## {name.title()}'")
    return RuleDoc(
        id=meta["id"],
        title=meta["title"],
        severity=meta["severity"],
        why=sections["why"],
        bad=sections["bad"],
        good=sections["good"],
        fix=sections["fix"],
        fixable=meta.get("fixable", "false").lower() == "true",
        buildkit=meta.get("buildkit") or None,
    )


@cache
def load_catalog() -> dict[str, RuleDoc]:
    """All rule docs shipped with the package, keyed by id (sorted)."""
    folder = resources.files("layerkit.lint").joinpath("rules")
    docs: dict[str, RuleDoc] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        doc = parse_rule_doc(entry.read_text(encoding="utf-8"), entry.name)
        if doc.id + ".md" != entry.name:
            raise LintError(f"{entry.name}: id {doc.id!r} does not match the file name")
        docs[doc.id] = doc
    return docs


def rule_doc(rule_id: str) -> RuleDoc:
    return load_catalog()[rule_id]


def resolve_rule_name(name: str) -> str | None:
    """Map a rule id or a BuildKit check name (any case) to our id."""
    wanted = name.strip().lower()
    for doc in load_catalog().values():
        if doc.id == wanted or (doc.buildkit and doc.buildkit.lower() == wanted):
            return doc.id
    return None


def export_docs(target: str) -> list[str]:
    """Copy the packaged rule docs to ``target`` (``docs/rules``); returns the names.

    The package data is the source of truth; ``tests/unit/test_lint_rules.py``
    fails when the two copies differ.
    """
    from pathlib import Path

    folder = resources.files("layerkit.lint").joinpath("rules")
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            (out / entry.name).write_bytes(entry.read_bytes())
            names.append(entry.name)
    return names


if __name__ == "__main__":  # python -m layerkit.lint.catalog docs/rules
    import sys

    print("\n".join(export_docs(sys.argv[1] if len(sys.argv) > 1 else "docs/rules")))
