"""Allow ``python -m pos_loyalty``."""

from pos_loyalty.cli import main

main()
