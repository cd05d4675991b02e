"""The ``crypto-ml`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys

from crypto_ml import __version__

#: Modules that add sub-commands (each has ``register(subparsers)``).
COMMAND_MODULES = (
    "crypto_ml.commands.data",
    "crypto_ml.commands.models",
    "crypto_ml.commands.pipeline",
    "crypto_ml.commands.engine",
    "crypto_ml.commands.stack",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crypto-ml",
        description="Crypto-ML: machine learning on daily crypto market data.",
    )
    parser.add_argument("--version", action="version", version=f"crypto-ml {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
