from metaextract.cli import run

run()
