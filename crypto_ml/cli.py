"""The ``crypto-ml`` command line.

Expected failures (a bad file, date, argument or setting; a server that cannot be reached) end in
one line on stderr, ``crypto-ml <command>: error: <what is wrong>``, and a non-zero exit code: 2
for bad input, 1 when something the command needs is not there. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from crypto_ml import __version__

#: Modules that add sub-commands (each has ``register(subparsers)``).
COMMAND_MODULES = (
    "crypto_ml.commands.data",
    "crypto_ml.commands.models",
    "crypto_ml.commands.pipeline",
    "crypto_ml.commands.engine",
    "crypto_ml.commands.promotion",
    "crypto_ml.commands.stack",
    "crypto_ml.commands.trigger",
)


class CLIError(Exception):
    """An expected failure of a command: printed as one line, exit ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or not action.option_strings
            or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
        ):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument answered in one line (and where to read more), a mistyped
    command answered with the nearest ones, and every option's default in its help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            import difflib

            choices = re.findall(r"'([^']*)'", match.group(2)) or [
                c.strip() for c in match.group(2).split(",")
            ]
            near = difflib.get_close_matches(match.group(1), choices, n=3, cutoff=0.5)
            if near:
                message += f"; did you mean {' or '.join(repr(n) for n in near)}?"
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def _exit_code(exc: BaseException) -> int | None:
    """2 for bad input, 1 for what is missing or unreachable, ``None`` for a bug."""
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from crypto_ml.data.loader import UnknownCoinError
    from crypto_ml.data.validation import DataValidationError
    from crypto_ml.markets import MarketConfigError
    from crypto_ml.sources.base import SourceError

    if isinstance(exc, CLIError):
        return exc.code
    if isinstance(
        exc,
        (
            UnknownCoinError,
            MarketConfigError,
            ArgumentError,
            FileNotFoundError,
            IsADirectoryError,
            NotADirectoryError,
            ValueError,
        ),
    ):
        return 2
    if isinstance(
        exc, (SourceError, DataValidationError, DBAPIError, ConnectionError, TimeoutError, PermissionError)
    ):
        return 1
    try:
        from kombu.exceptions import OperationalError as BrokerError
    except ImportError:  # pragma: no cover
        return None
    return 1 if isinstance(exc, BrokerError) else None


def _one_line(exc: BaseException) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(exc, DBAPIError):  # the driver's own first line, not SQLAlchemy's SQL dump
        text = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"database unreachable or refused the request: {text}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 600 else text[:597] + "..."


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="crypto-ml",
        description="Crypto-ML: machine learning on daily crypto market data.",
    )
    parser.add_argument("--version", action="version", version=f"crypto-ml {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    _add_debug(subparsers)
    _describe(subparsers)
    return parser


def _describe(subparsers) -> None:
    """A command without a description of its own shows its one-line help at the top of --help."""
    helps = {a.dest: a.help for a in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        if not sub.description and helps.get(name):
            sub.description = helps[name][0].upper() + helps[name][1:] + "."
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _describe(action)


def _add_debug(subparsers) -> None:
    """``--debug`` after the command too (``crypto-ml predict --debug``), at every level."""
    for sub in subparsers.choices.values():
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
        )
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug(action)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    command = " ".join(a for a in (argv if argv is not None else sys.argv[1:])[:2] if not a.startswith("-"))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes one line unless --debug
        if getattr(args, "debug", False):
            raise
        code = _exit_code(exc)
        message = _one_line(exc)
        if code is None:
            code, message = (
                1,
                f"unexpected {type(exc).__name__}: {message} (run with --debug for the traceback)",
            )
        print(f"crypto-ml {command}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
