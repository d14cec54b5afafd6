"""`fulfillment schemas export`: regenerate the published contract artifacts (no settings)."""

from __future__ import annotations

import argparse
from pathlib import Path

from service.entrypoints.command import Subcommands


def add(commands: Subcommands) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        "schemas", help="the published contract artifacts"
    )
    actions = parser.add_subparsers(dest="schemas_command", required=True)
    actions.add_parser("export", help="regenerate schemas/json/*.schema.json and asyncapi.yaml")
    return parser


def offline(args: argparse.Namespace) -> int:
    import schemas
    from schemas.export import export

    for path in export(Path(schemas.__file__).parent):
        print(path)
    return 0
