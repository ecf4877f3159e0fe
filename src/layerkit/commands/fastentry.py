"""``layerkit build`` without click: the arguments of the common rebuild, read by hand.

A no-op rebuild should cost little more than Python start-up plus one ``stat`` per
context file; importing click and the shared flag tables alone is ~20 ms of it.
So :func:`try_build` reads the arguments itself when they use only the flags below,
written the plain ways (``--flag value``, ``--flag=value``, ``-t value``). Anything
else (another flag, a bundled short option, ``--``, ``--help``, a value click would
reject) returns None and the click application takes the untouched argument list.
``tests/unit/test_fastentry.py`` checks that, whenever this parser accepts an
argument list, it builds exactly the BuildOptions click does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from layerkit.worker.options import BuildOptions

_FLAGS: Mapping[str, str] = {
    "-t": "tag", "--tag": "tag",
    "-f": "file", "--file": "file",
    "--build-arg": "build_arg",
    "--target": "target",
    "--platform": "platform",
    "--network": "network",
    "--progress": "progress",
    "--metadata-file": "metadata_file",
    "--root": "root",
    "--jobs": "jobs",
}
_REPEATABLE = frozenset({"tag", "build_arg"})
_CHOICES: Mapping[str, frozenset[str]] = {
    "network": frozenset({"default", "host", "none"}),
    "progress": frozenset({"auto", "tty", "plain", "json"}),
}


def parse(args: Sequence[str], environ: Mapping[str, str]) -> BuildOptions | None:
    """The options ``layerkit build ARGS`` means, or None when click must decide."""
    single: dict[str, str] = {}
    repeated: dict[str, list[str]] = {"tag": [], "build_arg": []}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            positional.append(arg)
            i += 1
            continue
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        dest = _FLAGS.get(name)
        if dest is None:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            i += 1
        i += 1
        if value.startswith("-"):
            return None  # click's reading of this differs by flag; let it decide
        if dest in _REPEATABLE:
            repeated[dest].append(value)
        else:
            single[dest] = value
    if len(positional) > 1 or (positional and not positional[0]):
        return None
    for dest, allowed in _CHOICES.items():
        if dest in single and single[dest] not in allowed:
            return None
    jobs = single.get("jobs", "4")
    if not (jobs.isascii() and jobs.isdigit() and int(jobs) >= 1):
        return None
    build_args: dict[str, str | None] = {}
    for value in repeated["build_arg"]:
        key, has_value, val = value.partition("=")
        if not key:
            return None  # click's path reports the error
        build_args[key] = val if has_value else None
    return BuildOptions(
        context=positional[0] if positional else ".",
        file=single.get("file"),
        tags=tuple(repeated["tag"]),
        build_args=build_args,
        target=single.get("target"),
        platform=single.get("platform"),
        network=single.get("network", "default"),
        progress=single.get("progress", "auto"),
        metadata_file=single.get("metadata_file"),
        # As click's envvar: an empty LAYERKIT_ROOT counts as unset.
        root=single["root"] if "root" in single else (environ.get("LAYERKIT_ROOT") or None),
        jobs=int(jobs),
    )


def try_build(args: Sequence[str]) -> int | None:
    """Run ``layerkit build ARGS`` if :func:`parse` accepts them: the exit status;
    None to hand the arguments to click."""
    options = parse(args, os.environ)
    if options is None:
        return None
    from layerkit.commands import buildrun
    from layerkit.errors import LayerkitError

    try:
        buildrun.run(options)
    except LayerkitError as err:
        print(err.render(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naborted", file=sys.stderr)  # as the click path prints it
        return 130
    return 0
