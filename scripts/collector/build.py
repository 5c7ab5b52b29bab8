"""`make collector`: build the stack's otelcol-contrib from scripts/collector/manifest.yaml into the cache.

Prints where the binary is and how long the build took (nothing is built when it is cached already).
"""

from __future__ import annotations

import argparse
import sys

from stack.collector_build import CollectorBuildError, binary_path, build


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="build again even when the binary is cached")
    parser.add_argument("--print-path", action="store_true", help="print the cached binary's path and exit")
    args = parser.parse_args()
    if args.print_path:
        print(binary_path())
        return 0
    try:
        result = build(force=args.force)
    except CollectorBuildError as exc:
        print(f"Error: {exc.one_line()}", file=sys.stderr)
        return 1
    if result.built:
        print(f"built {result.path} in {result.seconds:.1f} s")
    else:
        print(f"cached: {result.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
