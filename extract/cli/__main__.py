"""``python -m extract.cli``: the same as the ``iqb`` console script (the tests use both)."""

from extract.cli import main

main()
