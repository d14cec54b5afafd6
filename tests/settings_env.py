"""Settings as the environment of a `fulfillment` subprocess: every field that has a value, secrets
in clear (the child must read them), nothing inherited from this process's FULFILLMENT_* names."""

from __future__ import annotations

import os

from pydantic import SecretStr

from service.config.settings import ENV_PREFIX, Settings


def environment_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, frozenset | set):
            if not value:
                continue
            value = ",".join(sorted(str(v) for v in value))
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env | extra
