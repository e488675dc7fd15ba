"""The path fence: no file outside the registered folders is read because of where a link points.

:func:`outside_root` refuses a file that now resolves outside the folder it was registered under (a
symlink retargeted after registration); :func:`in_folder` tells an engine whether a companion or sibling
it would open beside a file resolves into that file's folder.
"""

from __future__ import annotations

import os
import stat
import time
from functools import lru_cache


@lru_cache(maxsize=1024)
def _real_root(root: str) -> str:
    """A registered folder, resolved once per process: if it is re-pointed later, its files resolve
    elsewhere and are refused, which is the safe side."""
    return os.path.realpath(root)


DIR_TTL = 0.1  # seconds a folder's resolved path is reused (a plate's files share a handful of folders)
_dirs: dict[str, tuple[float, str]] = {}


def _real_dir(folder: str) -> str:
    now = time.monotonic()
    hit = _dirs.get(folder)
    if hit is not None and now - hit[0] < DIR_TTL:
        return hit[1]
    if len(_dirs) > 4096:
        _dirs.clear()
    real = os.path.realpath(folder)
    _dirs[folder] = (now, real)
    return real


def _resolve(path: str) -> tuple[str, os.stat_result | None]:
    """``os.path.realpath(path)``, its folder part resolved at most every :data:`DIR_TTL` seconds; the file is
    always looked at (a symlink is resolved in full). Also the file's ``lstat`` when it is no symlink."""
    folder, name = os.path.split(path)
    if not folder or name in ("", ".", "..") or not os.path.isabs(path):
        return os.path.realpath(path), None
    try:
        st = os.lstat(path)
    except OSError:
        return os.path.realpath(path), None
    if stat.S_ISLNK(st.st_mode):
        return os.path.realpath(path), None
    return os.path.join(_real_dir(folder), name), st


def outside_root(path: str, root: str) -> str | None:
    """Why ``path`` must not be read as a file of the folder ``root`` (it resolves outside it), or None.

    Registration never follows a symlink out of the folder; this catches a link retargeted afterwards
    (a retargeted folder link within :data:`DIR_TTL` seconds of the last file read from it).
    """
    return outside_root_stat(path, root)[0]


def outside_root_stat(path: str, root: str) -> tuple[str | None, os.stat_result | None]:
    """:func:`outside_root`, and the file's ``stat`` when it was taken on the way (the file is no symlink)."""
    try:
        (real, st), top = _resolve(path), _real_root(root)
    except (OSError, ValueError) as exc:
        return f"cannot resolve the path: {exc}", None
    if real == top or real.startswith(top.rstrip(os.sep) + os.sep):
        return None, st
    return f"resolves to {real}, outside the registered folder {top}; not followed", None


def in_folder(path: str, folder: str) -> bool:
    """Whether ``path`` (a file an engine would read beside the one it was given: a companion, a sibling
    of a group) resolves into ``folder`` itself; a link that leads anywhere else is not to be opened, so
    that no file outside the registered folders is read because of where a link points."""
    try:
        return os.path.dirname(os.path.realpath(path)) == os.path.realpath(folder)
    except (OSError, ValueError):
        return False
