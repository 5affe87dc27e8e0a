"""`python -m letras.core` runs the letras CLI (also what torchrun launches)."""

from .cli import main

if __name__ == "__main__":
    main()
