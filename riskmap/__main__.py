"""``python -m riskmap``: the same command line as the ``riskmap`` console script."""

from riskmap.cli import main

if __name__ == "__main__":
    main()
