"""The ``ferrostream`` command installed with the wheel."""

from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the command line (``ferrostream --version``)."""
    from ferrostream import __version__

    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"ferrostream {__version__}")
        return 0
    print("usage: ferrostream --version", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
