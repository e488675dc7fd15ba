"""``metaextract serve``: a read-only web view of experiments, plate maps, submissions and files.

Server-rendered (Starlette + Jinja2 with autoescape on; every value from a file or the database is text,
never markup); the one script, ``static/live.js``, polls a JSON endpoint to keep a submission's page
current and writes only through ``textContent``. Everything the pages need ships in the package; a
Content-Security-Policy allows nothing from elsewhere, nor inline scripts.

Invariants: the app never writes to the database (:func:`metaextract.store.views.open_read_only`), every
database read goes through :mod:`metaextract.store.views`, and no route reads an image file or a path
stored in the database: paths are shown, never served.
"""

from __future__ import annotations

from metaextract.web.app import create_app

__all__ = ["create_app"]
