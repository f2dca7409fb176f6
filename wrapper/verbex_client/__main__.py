"""`python -m verbex_client` / the `verbex` console script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ._cli import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
