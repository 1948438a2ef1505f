"""`python -m ragline_client.cli`, the same as the `ragline` console script."""

from ragline_client.cli import main

main()
