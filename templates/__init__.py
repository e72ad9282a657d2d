"""Contract templates shipped with contractflow, one folder per version.

A folder is named after its version (``freelance-fr@1``) and holds a
``template.json`` (version, title, language, body file) and the Jinja2 body.
Templates are read from the installed package on first use, never at import.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from contracts.errors import PermanentError, ReasonCode
from contracts.rendering import TemplateSource

__all__ = ["KNOWN_TEMPLATES", "TemplateSource", "known_templates", "load_template"]

_MANIFEST = "template.json"

# Filled on first access by the module __getattr__ below, so importing this
# package reads no file.
KNOWN_TEMPLATES: frozenset[str]


def known_templates() -> frozenset[str]:
    """Return the version of every template folder in the package."""
    return _discover()


def load_template(version: str) -> TemplateSource:
    """Return the template of a version, or fail permanently if none ships."""
    # Checking membership first also keeps a version like "../x" from
    # naming a path outside the package.
    if version not in _discover():
        raise PermanentError(
            f"unknown contract template version {version!r}",
            reason_code=ReasonCode.UNKNOWN_TEMPLATE,
        )
    return _read(version)


@cache
def _discover() -> frozenset[str]:
    root = resources.files(__name__)
    return frozenset(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and entry.joinpath(_MANIFEST).is_file()
    )


@cache
def _read(version: str) -> TemplateSource:
    folder = resources.files(__name__).joinpath(version)
    manifest = json.loads(folder.joinpath(_MANIFEST).read_text(encoding="utf-8"))
    return TemplateSource(
        version=manifest["version"],
        title=manifest["title"],
        language=manifest["language"],
        text=folder.joinpath(manifest["body"]).read_text(encoding="utf-8"),
    )


def __getattr__(name: str) -> frozenset[str]:
    if name == "KNOWN_TEMPLATES":
        return _discover()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
