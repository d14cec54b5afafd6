"""The README's configuration table lists every setting the service reads, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from service.config.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SETTINGS = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def documented() -> set[str]:
    """Names in the first cell of the table's rows; `A_B` / `_C` abbreviates `A_C` (or `A_B_C`
    and so on: whichever ending of the first name the short one replaces)."""
    names: set[str] = set()
    for line in README.read_text("utf-8").splitlines():
        if not line.startswith(f"| `{ENV_PREFIX}"):
            continue
        first, *short = re.findall(r"`([A-Z_]+)`", line.split("|")[1])
        names.add(first)
        words = first.split("_")
        for abbreviated in short:
            candidates = {"_".join(words[:i]) + abbreviated for i in range(1, len(words))}
            names.update(candidates & SETTINGS or {abbreviated})
    return names


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    assert SETTINGS - documented() == set()


def test_the_readme_configuration_table_names_no_setting_that_does_not_exist() -> None:
    assert documented() - SETTINGS == set()
