"""Runs one CLI build and prints its outcome: the memo's answer, or the full path's.

Shared by the click command (commands/build.py) and the pre-click entry
(commands/fastentry.py), so both print exactly the same thing; it uses ``print``
because click may not be imported.
"""

from __future__ import annotations

import sys

from layerkit.worker.options import BuildOptions


def run(options: BuildOptions) -> None:
    from layerkit.worker import memo

    # A no-op rebuild is answered from the memo without importing the parser,
    # frontend or solver (see worker/memo.py); anything else takes the full path.
    replayed, capture = memo.lookup(options, sys.stderr)
    if replayed is not None:
        names = f" ({', '.join(replayed.names)})" if replayed.names else ""
        print(f"image {replayed.image_id}{names}", file=sys.stderr, flush=True)
        print(replayed.image_id, flush=True)
        return

    from layerkit.worker.session import run_build

    result = run_build(options, capture=capture)  # reuses the memo's context checksums
    names = f" ({', '.join(result.names)})" if result.names else ""
    for export in result.exports:
        if export.spec.dest is not None:
            print(f"exported type={export.spec.type} to {export.spec.dest}", file=sys.stderr)
    print(f"image {result.image_id}{names}", file=sys.stderr, flush=True)
    print(result.image_id, flush=True)
