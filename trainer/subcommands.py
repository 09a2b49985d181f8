"""What the trainer's sub-commands share: a sub-parser that shows its defaults in ``--help``
and names the handler ``python -m trainer`` runs for it."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_subcommand(sub, name: str, help: str, handler: Callable) -> argparse.ArgumentParser:
    """Sub-command ``name`` of ``sub`` (an ``add_subparsers()`` result) whose ``--help`` shows
    every default, run by ``handler(args)``; add its arguments to the parser returned."""
    parser = sub.add_parser(name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser
