"""The docs site builds with ``mkdocs build --strict`` and without a single warning.

A broken link or anchor, a page missing from the nav, a docstring the reference cannot read, or an
operator module that no longer imports statically fails here, as it would fail the site. MkDocs and
its plugins come from requirements-deploy.txt (``bash scripts/install.sh --deploy``); missing,
the test is skipped locally and fails with ``CI=true``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MKDOCS = Path(sys.executable).parent / "mkdocs"
#: The build takes about 2 s here; a build that takes far longer has gone wrong (e.g. a plugin
#: importing Airflow or TensorFlow instead of reading the sources).
BUDGET_S = 60
#: A README's links into the docs: ``[text](docs/page.md)`` or ``(docs/page.md#anchor)``.
DOC_LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)")


def _mkdocs() -> str:
    if MKDOCS.exists():
        return str(MKDOCS)
    message = f"mkdocs is not installed ({MKDOCS}); run: bash scripts/install.sh --deploy"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_the_site_builds_strict_without_a_warning(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner, not ours
    started = time.monotonic()
    out = subprocess.run(
        [_mkdocs(), "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUDGET_S * 2,
    )
    seconds = time.monotonic() - started
    log = out.stdout + out.stderr
    print(f"mkdocs build --strict: {seconds:.1f} s")
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert out.returncode == 0 and not warnings, "\n".join(warnings) or log[-4000:]
    assert seconds < BUDGET_S, f"the docs build took {seconds:.0f} s (budget {BUDGET_S} s)"
    # Every page of the nav was built, and the reference has what the docstrings say.
    for page in (
        "getting-started",
        "markets",
        "models",
        "pipeline",
        "reference",
        "engine",
        "production",
        "operations",
        "settings",
        "benchmarks",
        "contributing",
    ):
        assert (site / page / "index.html").exists(), page
    reference = (site / "reference" / "index.html").read_text()
    for obj in (
        "operators.transform.CoinTransformOperator",
        "operators.engine.EngineSubmitOperator",
        "operators.trading.TradeBranchOperator",
        "operators.trading.StorePredictionOperator",
        "operators.trading.TradeRequestOperator",
        "operators.fanout.TriggerDagRunsOperator",
        "sensors.engine.EngineTaskSensor",
        "sensors.dag_runs.DagRunsSensor",
        "triggers.engine.EngineTaskTrigger",
        "triggers.engine.EngineSubmitTrigger",
        "triggers.dag_runs.DagRunsTrigger",
        "hooks.database.CryptoDatabaseHook",
        "hooks.engine.CryptoEngineHook",
        "hooks.market.CryptoMarketHook",
    ):
        assert f'id="crypto_ml.{obj}"' in reference, f"the reference lacks crypto_ml.{obj}"
    assert ":class:`" not in reference and ":param " not in reference  # roles and fields rendered
    # The README's links into the docs (README.next.md: the proposed one) reach a page and an anchor.
    for readme in sorted(ROOT.glob("README*.md")):
        for page, anchor in DOC_LINK.findall(readme.read_text()):
            built = site / Path(page).relative_to("docs").with_suffix("") / "index.html"
            if page == "docs/index.md":
                built = site / "index.html"
            assert built.exists(), f"{readme.name}: no docs page {page}"
            assert not anchor or f'id="{anchor}"' in built.read_text(), (
                f"{readme.name}: no #{anchor} in {page}"
            )
