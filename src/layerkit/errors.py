"""The layerkit exception tree, shaped like pip's diagnostic errors.

Every error a user can see carries a reference id, a message, where it
happened (file, line and the offending text) and a hint that says how to fix
it. ``render()`` produces the text the CLI prints::

    error: copy-source-missing
      × COPY requirements.txt: no such file in the build context
      ╰─▶ Dockerfile:4  COPY requirements.txt .
    hint: it is excluded by .dockerignore line 7 ("*.txt")

Tree::

    LayerkitError
     ├── DockerfileError            (dockerfile/: syntax, directives, flags, expansion)
     ├── FrontendError              (frontend/: stages, targets, args)
     ├── ContextError               (context/: .dockerignore, missing files, escapes)
     ├── LintError                  (lint/: bad configuration of the linter itself)
     └── BuildError                 (solver/, executor/, snapshot/, content/, exporter/)
"""

from __future__ import annotations

from layerkit.fastclass import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a source file: 1-based line numbers, and the text found there."""

    file: str
    line: int
    end_line: int | None = None
    text: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class LayerkitError(Exception):
    """Base class: a problem the user can act on."""

    reference: str = "layerkit-error"

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        reference: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint
        if reference is not None:
            self.reference = reference

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"

    def render(self) -> str:
        lines = [f"error: {self.reference}", f"  × {self.message}"]
        if self.location is not None:
            text = self.location.text.strip()
            lines.append(f"  ╰─▶ {self.location}  {text}".rstrip())
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class DockerfileError(LayerkitError):
    reference = "dockerfile-syntax"


class FrontendError(LayerkitError):
    reference = "dockerfile-invalid"


class ContextError(LayerkitError):
    reference = "build-context"


class LintError(LayerkitError):
    reference = "lint"


class BuildError(LayerkitError):
    reference = "build-failed"
