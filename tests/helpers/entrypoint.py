"""The official Airflow image's entrypoint rules, to check what a container would really run.

The image's ENTRYPOINT is ``dumb-init -- /entrypoint`` and its rules (the image's documentation,
"Entrypoint"; re-stated in tests/deploy/standins/airflow-entrypoint.sh): ``bash ...`` and
``python ...`` run as given, ``airflow X ...`` runs as ``airflow X ...``, and anything else runs
as ``airflow <args>``. A Kubernetes ``command:`` replaces the ENTRYPOINT (no rules apply).
"""

from __future__ import annotations

import contextlib
import io


def effective_command(command: list[str] | None, args: list[str] | None) -> list[str]:
    """What the official image runs for a container's ``command`` / ``args`` (compose: ``command``
    is Docker's CMD, so it arrives as ``args``)."""
    if command:
        return [*command, *(args or [])]
    args = list(args or [])
    if args[:1] in (["bash"], ["python"]):
        return args
    if args[:1] == ["airflow"]:
        args = args[1:]
    return ["airflow", *args]


def airflow_cli_error(argv: list[str]) -> str | None:
    """``None`` when Airflow's own CLI parser accepts ``airflow <argv>``, else its error text."""
    from airflow.cli.cli_parser import get_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            get_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exc.code}"
    return None


def survives(command: list[str] | None, args: list[str] | None) -> str | None:
    """``None`` when the container runs what it means to; else why not (one line)."""
    run = effective_command(command, args)
    if run[0] != "airflow":
        return None
    return airflow_cli_error(run[1:])
