"""The command line answers bad input like a CLI: one line on stderr saying what is wrong (and what
is valid), a non-zero exit code, no traceback unless ``--debug``. Through the real entry point."""

from __future__ import annotations

import pytest

from crypto_ml.cli import main


@pytest.fixture
def files(tmp_path):
    (tmp_path / "columns.csv").write_text("when,price\n2017-01-01,3\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "nocsv").mkdir()
    (tmp_path / "nocsv" / "notes.txt").write_text("nothing here")
    return tmp_path


CORPUS = [
    # (argv, exit code, words in the one line)
    (["validate", "--source", "{tmp}/columns.csv"], 1, "not a price CSV (no coin/Date/Close header)"),
    (["validate", "--source", "{tmp}/empty.csv"], 1, "not a price CSV"),
    (["validate", "--source", "{tmp}/binary.csv"], 1, "not a price CSV"),
    (["validate", "--source", "{tmp}/missing.csv"], 1, "price data not found"),
    (["validate", "--source", "{tmp}/nocsv"], 1, "no price CSV files found"),
    (["ingest", "--source", "{tmp}/missing.csv", "--db", "sqlite:///{tmp}/x.db"], 1, "price data not found"),
    (["predict", "--as-of", "notadate"], 2, "'notadate' is not a date (YYYY-MM-DD"),
    (
        ["predict", "--as-of", "1990-01-01"],
        2,
        "no coin has data on or before 1990-01-01: the data starts on 2013-04-28",
    ),
    (["predict", "--model", "nosuch"], 2, "invalid choice: 'nosuch' (choose from 'naive', 'drift'"),
    (["predict", "--horizon", "-1"], 2, "-1 is not positive (give 1 or more)"),
    (["predict", "--horizon", "ten"], 2, "'ten' is not a whole number"),
    (["predict", "--coins", "bitcon", "--no-store"], 2, "unknown coin 'bitcon'"),
    (
        ["db", "upgrade", "--db", "postgresql://nobody@127.0.0.1:9/nothing"],
        1,
        "database unreachable or refused the request: connection failed",
    ),
    (["db", "upgrade", "--db", "notaurl"], 2, "Could not parse SQLAlchemy URL"),
    (["db", "rollback"], 2, "invalid choice: 'rollback' (choose from 'upgrade', 'url')"),
    (
        ["summary", "--coins", "bitcon"],
        2,
        "unknown coin 'bitcon' (97 coins loaded from bundled); did you mean 'bitcoin'",
    ),
    (["summary", "--as-of", "2017-13-01"], 2, "'2017-13-01' is not a date"),
    (["summary", "--market", "crypto-ml-market://binance"], 2, "needs either extra.symbols"),
    (["summary", "--market", "crypto-ml-market://binanse?top=3"], 1, "'binanse' is not an exchange ccxt"),
    (["summary", "--synthetic", "-2"], 2, "argument --synthetic: -2 is negative (give 0 or more)"),
    (["backtest", "--models", "prophet"], 2, "unknown model(s) prophet; valid: naive"),
    (["backtest", "--horizon", "0"], 2, "0 is not positive"),
    (["engine", "predict", "bitcoin", "--as-of", "2017-02-30"], 2, "'2017-02-30' is not a date"),
    (["engine", "predict", "bitcoin", "--params", "{bad json"], 2, "error:"),
    (["nosuchcommand"], 2, "invalid choice: 'nosuchcommand'"),
]


@pytest.mark.parametrize(("argv", "code", "words"), CORPUS, ids=[" ".join(c[0])[:50] for c in CORPUS])
def test_bad_input_is_one_line_and_an_exit_code(argv, code, words, files, capsys):
    argv = [a.replace("{tmp}", str(files)) for a in argv]
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse's own exit
        got = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln and "warn(" not in ln]
    assert got == code, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert words in lines[0], lines[0]


def test_debug_shows_the_traceback(files):
    with pytest.raises(Exception, match="price data not found"):
        main(["validate", "--source", str(files / "missing.csv"), "--debug"])


def _parsers(parser, path=("crypto-ml",)):
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_command_has_a_description_and_every_argument_a_help():
    from crypto_ml.cli import build_parser

    missing = []
    for path, parser in _parsers(build_parser()):
        if not parser.description:
            missing.append(f"{' '.join(path)}: no description")
        for action in parser._actions:
            if (
                not action.help
                and action.dest != "help"
                and not action.__class__.__name__.startswith("_SubParsers")
            ):
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, "\n".join(missing)


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: naive,linear)" in out and "(default 12)" in out and "(default: bitcoin)" in out


def test_a_mistyped_command_is_answered_with_the_nearest(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["sumary"])
    assert exit_.value.code == 2
    assert "crypto-ml: error: argument COMMAND: invalid choice: 'sumary'" in capsys.readouterr().err


def test_building_the_parser_imports_nothing_heavy():
    """``crypto-ml --help`` in a blink: no pandas, scikit-learn, TensorFlow, Airflow, Celery or
    SQLAlchemy is imported to build the parser (4.4 s before, 0.16 s after; see the closing note)."""
    import subprocess
    import sys

    code = (
        "import sys; from crypto_ml.cli import build_parser; build_parser(); "
        "heavy = sorted(m for m in ('pandas', 'sklearn', 'tensorflow', 'airflow', 'celery', 'sqlalchemy', "
        "'numpy', 'ccxt') if m in sys.modules); print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY=\n" in out.stdout + "\n", out.stdout + out.stderr
