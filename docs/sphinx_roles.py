"""A griffe extension for the docs site: Sphinx cross-reference roles in docstrings as code.

The Airflow classes' docstrings are Sphinx-style (``:param x:``, ``:class:`~pkg.mod.Name```), as
the providers' are. mkdocstrings-python reads the ``:param:`` fields; this turns the roles, which
Markdown does not know, into inline code (``:class:`~crypto_ml.hooks.engine.CryptoEngineHook```
becomes `` `CryptoEngineHook` ``), so the rendered reference shows names instead of role syntax.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

#: ``:role:`target``` or ``:role:`title <target>```, also broken across lines.
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const|ref):`([^`]+)`")


def _code(match: re.Match) -> str:
    text = re.sub(r"\s+", "", match.group(1)) if "<" not in match.group(1) else match.group(1)
    if "<" in text:  # title <target>: the title
        text = text.split("<", 1)[0].strip()
    elif text.startswith("~"):  # ~pkg.mod.Name: Name
        text = text[1:].rsplit(".", 1)[-1]
    return f"`{text}`"


def strip_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role written as inline code."""
    return ROLE.sub(_code, text)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = strip_roles(obj.docstring.value)
