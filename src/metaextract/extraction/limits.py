"""The limits every caller of the extraction shares, in one place (the API, the pool, the job runners, the CLI)."""

from __future__ import annotations

#: Seconds one file may take in a pool's extraction process before that process is replaced and the file
#: recorded as failed (a one-off start-up such as the JVM's gets extra time on top, see the file context).
DEFAULT_TIMEOUT = 120.0

#: Extra seconds a one-off start-up (the JVM, Bio-Formats' reader classes) may take on top of a file's timeout
#: before its process is replaced (see :meth:`metaextract.engines.base.FileContext.starting_up`).
START_GRACE = 120.0
