"""``metaextract serve``: the read-only web view on 127.0.0.1 (by default) over the database."""

from __future__ import annotations

import click


@click.command()
@click.option("--db", "db", metavar="URL", default=None,
              help="Database URL (default: the top-level --db, METAEXTRACT_DB, else the user data directory).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the view has no login: widen it only on a trusted network).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, db: str | None, host: str, port: int) -> None:
    """Serve a read-only web view of experiments, plate maps, submissions and files.

    The database is opened read-only (it is never created, migrated or written); pages and their JSON
    endpoints (/api/...) show paths but never serve the files.
    """
    import uvicorn

    from metaextract.store.views import open_read_only
    from metaextract.web import create_app

    store = open_read_only(db or (ctx.obj or {}).get("db"))
    click.echo(f"metaextract serve: {store.url} on http://{host}:{port}/ (read-only; Ctrl-C stops)", err=True)
    try:
        uvicorn.run(create_app(store), host=host, port=port, log_level="warning")
    finally:
        store.close()
