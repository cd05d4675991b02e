"""The preload of the processes that fork tasks: modules imported and the ORM configured once, so
forked tasks inherit both."""

from __future__ import annotations

import json
import subprocess
import sys


def test_preload_imports_the_task_modules_and_configures_the_orm():
    """Run in a fresh interpreter: a task forked after the preload finds every module imported and
    every mapper of the project's ORM configured (else each task pays ~0.4 CPU-s on its first query)."""
    code = (
        "import json, sys\n"
        "from crypto_ml.pipeline.preload import MODULES, preload\n"
        "from crypto_ml.storage import Base\n"
        "before = all(m.configured for m in Base.registry.mappers)\n"
        "preload()\n"
        "from crypto_ml.storage.db import head_revision\n"
        "print(json.dumps({'before': before, 'after': all(m.configured for m in Base.registry.mappers),\n"
        "                  'head_read': head_revision.cache_info().currsize == 1,\n"
        "                  'mappers': len(Base.registry.mappers),\n"
        "                  'missing': [m for m in MODULES if m not in sys.modules]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["mappers"] >= 5
    assert result["before"] is False  # importing the models alone leaves them to the first query
    assert result["after"] is True
    assert result["missing"] == []
    assert result["head_read"] is True  # the migrations' head: read once here, not in every task
