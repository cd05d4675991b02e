"""``crypto-ml backtest`` and ``crypto-ml predict`` through the real argparse CLI."""

from __future__ import annotations

import csv

import pytest

from crypto_ml.cli import main


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTO_ML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRYPTO_ML_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return tmp_path / "home"


def test_backtest_writes_png_and_csv_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "backtest",
            "--coins",
            "bitcoin,ethereum,neblio",
            "--models",
            "naive,linear",
            "--period",
            "60",
            "--folds",
            "3",
            "--horizon",
            "5",
            "--out",
            str(out),
            "--report",
            str(tmp_path / "r.md"),
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "backtest" in captured.err and "fold" in captured.err  # the tqdm progress bar
    assert "| model | n_coins | mae | rmse | mape | mase | direction |" in captured.out
    assert "| bitcoin | linear | 3 |" in captured.out
    assert "| neblio | naive | all | 11 rows; naive needs 60 test days" in captured.out
    png = out / "backtest_60d_3f_5h.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    with open(out / "backtest_60d_3f_5h_folds.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * 2 * 3  # 2 coins x 2 models x 3 folds (neblio skipped)
    assert {"coin", "model", "fold", "mae", "rmse", "mape", "mase", "direction"} <= set(rows[0])
    assert (tmp_path / "r.md").read_text().startswith("# Backtest report")


def test_backtest_all_coins_defaults_to_the_artifacts_folder(home, capsys):
    assert (
        main(
            [
                "backtest",
                "--coins",
                "all",
                "--models",
                "naive",
                "--period",
                "30",
                "--folds",
                "1",
                "--horizon",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| naive | " in out and "Skipped" in out
    folder = home / "backtests"
    assert sorted(p.name for p in folder.iterdir()) == [
        "backtest_30d_1f_2h.png",
        "backtest_30d_1f_2h_folds.csv",
    ]
    with open(folder / "backtest_30d_1f_2h_folds.csv") as fh:
        assert len(list(csv.DictReader(fh))) > 80  # one fold per coin with >= 32 rows


def test_backtest_passes_model_params(tmp_path, capsys):
    code = main(
        [
            "backtest",
            "--coins",
            "bitcoin",
            "--models",
            "lstm",
            "--period",
            "20",
            "--folds",
            "1",
            "--param",
            "lstm.units=[2,2]",
            "--param",
            "lstm.epochs=1",
            "--param",
            "lstm.window=5",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "| bitcoin | lstm | 1 |" in capsys.readouterr().out


def test_backtest_rejects_unknown_models_and_coins(capsys):
    assert main(["backtest", "--models", "naive,prophet", "--no-progress"]) == 2
    assert "valid: naive, drift, linear, ar, lstm" in capsys.readouterr().err
    assert main(["backtest", "--coins", "notacoin", "--models", "naive", "--no-progress"]) == 2
    assert "unknown coin 'notacoin'" in capsys.readouterr().err


def test_predict_prints_a_table_of_days_forecasts_and_intervals(capsys):
    assert (
        main(["predict", "--coins", "bitcoin,neblio", "--model", "drift", "--horizon", "3", "--no-store"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["coin", "date", "forecast", "lower80", "upper80", "lower95", "upper95"]
    assert lines[1].split()[:2] == ["bitcoin", "2017-09-23"] and lines[3].split()[1] == "2017-09-25"
    low80, high80 = (float(v.replace(",", "")) for v in lines[1].split()[3:5])
    assert low80 < float(lines[1].split()[2].replace(",", "")) < high80
    assert lines[4].split()[:2] == ["neblio", "2017-09-23"] and lines[4].split()[3:] == ["-"] * 4
    assert lines[-1].startswith(
        "neblio: no interval: DriftForecaster has no prediction intervals: fitted on 11"
    )


def test_predict_prints_talk_style(capsys):
    assert main(["predict", "--coins", "bitcoin,neblio", "--model", "drift", "--horizon", "3", "--talk"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("bitcoin [[") and lines[0].endswith("]]") and len(lines[0].split()) == 4
    assert lines[1].startswith("neblio [[")
    # a second run reuses the stored model (same data, same params)
    assert main(["predict", "--coins", "bitcoin", "--model", "drift", "--horizon", "3", "--talk"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == lines[0]


def test_predict_reports_short_coins(capsys):
    assert main(["predict", "--coins", "neblio", "--model", "ar", "--no-store"]) == 0
    assert (
        capsys.readouterr().out.strip()
        == "neblio skipped: neblio has 11 closes; the ar model needs at least 26"
    )
