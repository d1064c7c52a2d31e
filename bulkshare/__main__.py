"""`python -m bulkshare`."""

from bulkshare.cli import run

run()
