"""``python -m occseg``: the command line (also ``torchrun ... -m occseg predict ...``)."""

from occseg.cli.main import main

if __name__ == "__main__":
    main()
