"""Turns an ordered list of layer tars into the final root filesystem tree, in memory.

Applies the OCI layer rules: ``.wh.<name>`` deletes ``<name>`` from lower layers,
``.wh..wh..opq`` empties a directory of lower-layer content, a non-directory
replaces a whole subtree, and a directory over a directory merges. Whiteouts
of a layer are applied before its other entries, so they only ever hide lower
layers. Nothing is written to disk here; rootfs.py writes the tree out.

Safety is decided here, once, for both outputs: names with ``..`` or a leading
``/`` are refused, symlinks whose relative target climbs out of the root are
refused (Docker's breakout rule), hardlinks must name an earlier entry, and a
path whose parent is a symlink is resolved *inside* the tree (as in a chroot),
never on the host.
"""

from __future__ import annotations

import contextlib
import posixpath
import tarfile
from collections.abc import Iterator
from typing import IO

from layerkit.content.errors import ExportError, UnsafeLayerError
from layerkit.content.store import ContentStore
from layerkit.fastclass import dataclass, field

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_MAX_SYMLINKS = 40


@dataclass
class Entry:
    """One file of the final tree: where its header and bytes live."""

    path: str
    info: tarfile.TarInfo  # the original header (its offsets point into ``layer``)
    layer: int
    link_source: Entry | None = None  # for hardlinks: the regular file they share

    @property
    def is_dir(self) -> bool:
        return self.info.isdir()


@dataclass
class _Node:
    entry: Entry | None = None
    children: dict[str, _Node] = field(default_factory=dict)


def normalize_name(name: str, *, layer: int, what: str = "entry") -> str:
    """Canonical relative path of a tar member name; refuse ``..`` and absolute paths."""
    if name.startswith("/"):
        raise UnsafeLayerError(
            f"layer {layer}: {what} {name!r} is an absolute path",
            hint="layer tars must use relative names; the layer is malformed or hostile",
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayerError(
            f"layer {layer}: {what} {name!r} contains '..'",
            hint="layer tars must not climb out of the root; the layer is malformed or hostile",
        )
    return "/".join(parts)


class FlatTree:
    """The merged tree. Iterate with :meth:`walk` (parents before children, sorted)."""

    def __init__(self) -> None:
        self.root = _Node()

    def _node(self, path: str) -> _Node | None:
        node = self.root
        for part in path.split("/") if path else []:
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        return node

    def get(self, path: str) -> Entry | None:
        node = self._node(path)
        return node.entry if node else None

    def resolve_parent(self, path: str) -> str:
        """Rewrite ``path`` so that no parent component is a symlink, resolving links
        inside the tree (absolute targets from the root, ``..`` clamped at the root)."""
        parts = path.split("/")
        resolved: list[str] = []
        pending = parts[:-1]
        hops = 0
        while pending:
            part = pending.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, part])
            entry = self.get(candidate)
            if entry is not None and entry.info.issym():
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise UnsafeLayerError(
                        f"too many levels of symlinks resolving {path!r}",
                        hint="the layer has a symlink loop; it is malformed or hostile",
                    )
                target = entry.info.linkname
                if target.startswith("/"):
                    resolved = []
                pending = target.split("/") + pending
                continue
            resolved.append(part)
        return "/".join([*resolved, parts[-1]])

    def remove(self, path: str) -> None:
        """Delete ``path`` and everything under it (a whiteout)."""
        parent_path, _, name = path.rpartition("/")
        parent = self._node(parent_path)
        if parent is not None:
            parent.children.pop(name, None)

    def clear_children(self, path: str) -> None:
        """Empty a directory of everything from lower layers (an opaque whiteout)."""
        node = self._node(path)
        if node is not None:
            node.children.clear()

    def put(self, entry: Entry) -> None:
        node = self.root
        parts = entry.path.split("/")
        for part in parts[:-1]:
            node = node.children.setdefault(part, _Node())
            if node.entry is not None and not node.entry.is_dir:
                # A file where a directory is now needed: the directory wins,
                # as when a layer's tar lists a/b after a lower layer's file a.
                node.entry = None
        leaf = node.children.setdefault(parts[-1], _Node())
        if not entry.is_dir:
            leaf.children.clear()
        leaf.entry = entry

    def walk(self) -> Iterator[tuple[str, Entry | None]]:
        """(path, entry) depth-first with sorted names; entry None = implicit directory."""
        stack: list[tuple[str, _Node]] = [
            (name, child) for name, child in sorted(self.root.children.items(), reverse=True)
        ]
        while stack:
            path, node = stack.pop()
            yield path, node.entry
            for name, child in sorted(node.children.items(), reverse=True):
                stack.append((f"{path}/{name}", child))


def _check_symlink(path: str, target: str, layer: int) -> None:
    if target.startswith("/"):
        return  # absolute targets resolve inside the container's root
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeLayerError(
            f"layer {layer}: symlink {path!r} -> {target!r} points outside the root filesystem",
            hint="the layer is malformed or hostile; rebuild it from a trusted source",
        )


def _apply_layer(tree: FlatTree, members: list[tarfile.TarInfo], layer: int) -> None:
    regular: list[tuple[str, tarfile.TarInfo]] = []
    for info in members:
        path = normalize_name(info.name, layer=layer)
        if not path:
            continue  # the root directory itself
        base = posixpath.basename(path)
        if base.startswith(WHITEOUT_PREFIX):
            parent = tree.resolve_parent(path).rpartition("/")[0]
            if base == OPAQUE:
                tree.clear_children(parent)
            elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                victim = base[len(WHITEOUT_PREFIX) :]
                tree.remove(f"{parent}/{victim}" if parent else victim)
            continue  # other .wh..wh.* names are aufs metadata
        regular.append((path, info))
    for path, info in regular:
        if info.issparse():
            # Expanding a sparse entry writes its holes: a tiny layer could fill the disk.
            raise UnsafeLayerError(
                f"layer {layer}: {info.name!r} is a sparse tar entry, which is not supported",
                hint="re-create the layer without sparse files (tar without -S)",
            )
        path = tree.resolve_parent(path)
        entry = Entry(path, info, layer)
        if info.issym():
            _check_symlink(path, info.linkname, layer)
        elif info.islnk():
            target_path = tree.resolve_parent(
                normalize_name(info.linkname, layer=layer, what="hardlink target")
            )
            target = tree.get(target_path)
            if target is None or not (target.info.isfile() or target.info.islnk()):
                raise ExportError(
                    f"layer {layer}: hardlink {path!r} -> {info.linkname!r}: "
                    "the target is not an earlier regular file",
                    hint="the layer tar is malformed",
                )
            entry.link_source = target.link_source or target
        elif not (info.isfile() or info.isdir() or info.ischr() or info.isblk()
                  or info.isfifo()):
            continue  # sockets, GNU volume headers, ...: nothing to recreate
        tree.put(entry)


class LayerSet:
    """The opened layer tars of one image, so entries can be read back."""

    def __init__(self, store: ContentStore, diff_ids: tuple[str, ...]) -> None:
        self._stack = contextlib.ExitStack()
        self.tars: list[tarfile.TarFile] = []
        try:
            for diff_id in diff_ids:
                f = self._stack.enter_context(store.open(diff_id))
                self.tars.append(self._stack.enter_context(tarfile.TarFile(fileobj=f, mode="r")))
        except BaseException:
            self._stack.close()
            raise

    def read(self, entry: Entry) -> IO[bytes]:
        data = self.tars[entry.layer].extractfile(entry.info)
        if data is None:
            raise ExportError(f"layer {entry.layer}: {entry.path!r} has no content")
        return data

    def __enter__(self) -> LayerSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def flatten(layers: LayerSet) -> FlatTree:
    tree = FlatTree()
    for i, tar in enumerate(layers.tars):
        try:
            members = tar.getmembers()
        except tarfile.TarError as e:
            raise ExportError(f"layer {i} is not a readable tar: {e}") from None
        _apply_layer(tree, members, i)
    return tree
