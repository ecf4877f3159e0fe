"""What one applied FileOp did: the paths it wrote and the warnings it raised."""

from __future__ import annotations

from layerkit.fastclass import dataclass, field


@dataclass
class FileOpResult:
    """Paths are absolute inside the destination root ("/app/main.py").

    ``written`` lists the top-level results of each action (the file or
    directory a source landed on, the extracted archive's directory, the
    created file or directory), not every file below them; ``entries`` counts
    every entry created or replaced, for progress output and debugging.
    """

    written: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    entries: int = 0

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
