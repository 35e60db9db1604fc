"""`python -m cortan` runs the same entry point as the `cortan` command."""

from cortan.cli import main

if __name__ == "__main__":
    main()
