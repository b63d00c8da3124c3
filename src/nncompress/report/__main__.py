"""`python -m nncompress.report`: see `cli`."""
from .cli import main

if __name__ == "__main__":
    main()
