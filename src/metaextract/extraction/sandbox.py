"""Keep an extraction process from reading files outside its registered folders (Linux Landlock).

An extraction process that knows the folders it serves (``ExtractionPool(roots=...)``: a submission's
acquisitions, a job's files) restricts itself, before reading any file, so that it can open for reading
only files under those folders and under what the process itself needs: the system (``/usr``, ``/lib*``,
``/bin``, ``/proc``, ``/sys``), of ``/dev`` only :data:`DEVICES` and of ``/etc`` only :data:`ETC` (what the
dynamic loader, Python and the JRE were seen to open, with strace, reading every kind of file: no
``/etc/hostname``, no ``/dev/shm``), this Python (its prefixes and import path), the bundled JRE, the
Bio-Formats jar and metaextract's cache. The kernel then refuses every other read, whoever asks: a
Bio-Formats reader following a name found inside a file (an external entity), a companion in a parent
folder, a link the other checks missed. ``/tmp``, home folders and other data stay out of reach.

Writing is not restricted (the JVM writes its crash logs to the temp folder). Where the kernel has no
Landlock (Linux < 5.13, or disabled) the process goes on without it; ``METAEXTRACT_SANDBOX=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
from collections.abc import Iterable, Sequence

ENV = "METAEXTRACT_SANDBOX"
SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/proc", "/sys")
#: Device nodes: the JVM reads /dev/random and /dev/urandom (SecureRandom, UUIDs), anything may open /dev/null.
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
#: Files of /etc: the loader's cache, the time zone (Python and the JVM), the user database the JVM reads
#: for ``user.home``/``user.name`` (through nsswitch), OpenSSL's configuration (read when Python's hashlib
#: loads). Host names, networks and secrets are not among them.
ETC = ("/etc/ld.so.cache", "/etc/ld.so.preload", "/etc/localtime", "/etc/timezone", "/etc/nsswitch.conf",
       "/etc/passwd", "/etc/group", "/etc/ssl/openssl.cnf")

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on every Linux architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_READ_FILE, _READ_DIR = 1 << 2, 1 << 3
_PR_SET_NO_NEW_PRIVS = 38


def needed() -> list[str]:
    """What an extraction process itself reads: the system, this Python, the JRE, the jar, the cache."""
    from metaextract.engines.bioformats import cds, jvm

    paths = [*SYSTEM, *DEVICES, *ETC, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    paths += [p for p in sys.path if p and os.path.isabs(p)]  # not "" (the working folder)
    for find in (jvm.java_home, lambda: jvm.bioformats_jar().parent):
        try:
            paths.append(str(find()))
        except Exception:  # noqa: BLE001 - no JRE or jar here: Bio-Formats fails on its own terms
            continue
    cache = cds.cache_dir()
    with contextlib.suppress(OSError):  # made now, so that an archive built later can be read back
        cache.mkdir(parents=True, exist_ok=True)
    return [*paths, str(cache)]


def restrict_reads(roots: Sequence[str], extra: Iterable[str] = ()) -> bool:
    """Allow this process (and its future children) to read only under ``roots``, :func:`needed` and
    ``extra``; returns whether the kernel applied it. Irreversible; call it before reading any file."""
    if os.environ.get(ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    if libc.syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION) < 1:
        return False  # no Landlock in this kernel
    tempfile.gettempdir()  # found (and remembered) now: finding it later would need to read the folder
    handled = _READ_FILE | _READ_DIR
    attr = struct.pack("=Q", handled)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.c_char_p(attr), len(attr), 0)
    if ruleset < 0:
        return False
    try:
        for path in dict.fromkeys([*roots, *needed(), *extra]):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # absent here
            try:
                access = handled if os.path.isdir(path) else _READ_FILE
                rule = struct.pack("=Qi", access, fd)  # struct landlock_path_beneath_attr (packed)
                libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.c_char_p(rule), 0)
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False
        return bool(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) == 0)
    finally:
        os.close(ruleset)
