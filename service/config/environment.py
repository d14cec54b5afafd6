"""Where the settings come from: `FULFILLMENT_<NAME>`, or `FULFILLMENT_<NAME>_FILE`, any setting
read from a file instead of the environment, the convention of Kubernetes and Docker secrets (a
mounted file whose content is the value)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

ENV_PREFIX = "FULFILLMENT_"
FILE_SUFFIX = "_FILE"


class ConfigurationError(Exception):
    """One line per invalid variable, each naming the variable and the problem, never a secret."""


def variable(field: str) -> str:
    """The environment variable of a settings field: `kafka_ssl_cafile` is
    `FULFILLMENT_KAFKA_SSL_CAFILE`."""
    return ENV_PREFIX + field.upper()


def read_value_file(variable: str, path: str) -> str:
    """The file's content, less one trailing newline (what `echo` and editors add)."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigurationError(f"{variable}: cannot read {path}: {reason}") from None
    return text.removesuffix("\n").removesuffix("\r")


class ValueFiles(PydanticBaseSettingsSource):
    """Reads `<prefix><FIELD>_FILE` for every field; naming a value twice is refused."""

    def __init__(
        self, settings_cls: type[BaseSettings], prefix: str, environ: Mapping[str, str]
    ) -> None:
        super().__init__(settings_cls)
        self._prefix = prefix
        # Variable names are case-insensitive, as for the settings themselves.
        self._environ = {name.upper(): value for name, value in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = self._prefix + field_name.upper() + FILE_SUFFIX
        path = self._environ.get(variable)
        if path is None:
            return None, field_name, False
        direct = self._prefix + field_name.upper()
        if direct in self._environ:
            raise ConfigurationError(f"{direct} and {variable} are both set: set only one")
        return read_value_file(variable, path), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


def file_variables(prefix: str, fields: Mapping[str, FieldInfo]) -> set[str]:
    return {prefix + name.upper() + FILE_SUFFIX for name in fields}


def from_environment(settings_cls: type[BaseSettings], prefix: str) -> ValueFiles:
    return ValueFiles(settings_cls, prefix, os.environ)


def unknown_variables(environ: Mapping[str, str], known: set[str]) -> list[str]:
    """A misspelt variable would otherwise be ignored in silence, its default used instead."""
    problems = []
    for name in sorted(n.upper() for n in environ if n.upper().startswith(ENV_PREFIX)):
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else " (the README lists every setting)"
        problems.append(f"{name}: not a setting{hint}")
    return problems
