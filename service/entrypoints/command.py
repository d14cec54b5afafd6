"""What the command table says of each command: its name, how it parses its arguments, what it
runs, and the servers it needs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from service.config.settings import Settings

Subcommands = Any  # argparse's `_SubParsersAction`, private to argparse


class Server(Enum):
    KAFKA = "Kafka"
    POSTGRES = "PostgreSQL"


@dataclass(frozen=True, slots=True)
class Command:
    """`add` declares the command's parser (and its arguments) on the `fulfillment` parser's
    subcommands. `run` gets the loaded settings and the parsed arguments and returns the exit
    code; `offline` is for a command that needs neither settings nor a server. `needs`: the
    servers it talks to. Kafka is reached once before `run`, to report a refusal's cause in
    one line; PostgreSQL through the pool the command opens, which reports its own."""

    name: str
    add: Callable[[Subcommands], argparse.ArgumentParser]
    run: Callable[[Settings, argparse.Namespace], int] | None = None
    offline: Callable[[argparse.Namespace], int] | None = None
    needs: frozenset[Server] = frozenset()

    def __post_init__(self) -> None:
        if (self.run is None) == (self.offline is None):
            raise ValueError(f"{self.name}: give exactly one of run and offline")
