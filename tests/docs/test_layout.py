"""The README's Layout section names every top-level entry and every package of crypto_ml/, and
nothing that is not there."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def _named(block: str) -> set[str]:
    """The names of each line: the words before the first run of three spaces; indented lines name
    entries of crypto_ml/."""
    names = set()
    for line in block.splitlines():
        if not line.strip():
            continue
        inside = line.startswith(" ")
        for word in re.split(r"\s{3,}", line.strip(), maxsplit=1)[0].split():
            names.add(f"crypto_ml/{word}" if inside else word)
    return names


def test_every_top_level_entry_and_package_is_in_the_layout():
    named = _named(_layout())
    ignored = [
        line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.strip()
    ]
    top = {
        p.name + ("/" if p.is_dir() else "")
        for p in ROOT.iterdir()
        if not p.name.startswith(".") and not any(fnmatch.fnmatch(p.name, pat) for pat in ignored)
    }
    top -= {"pyproject.toml", "README.md"}
    top |= {".ci/run"}
    packages = {
        f"crypto_ml/{p.name}/" for p in (ROOT / "crypto_ml").iterdir() if (p / "__init__.py").exists()
    }
    modules = {f"crypto_ml/{p.name}" for p in (ROOT / "crypto_ml").glob("*.py") if p.name != "__init__.py"}
    missing = (top | packages | modules) - named
    assert not missing, f"the README's Layout does not name: {sorted(missing)}"


def test_the_layout_names_nothing_that_is_not_there():
    named = _named(_layout())
    absent = [n for n in named if not (ROOT / n.rstrip("/")).exists()]
    assert not absent, f"the README's Layout names what the tree does not have: {absent}"
