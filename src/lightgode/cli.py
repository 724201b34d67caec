"""Command-line interface: parse, call the library, print. Each subcommand lives in ``commands/``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from lightgode.errors import LightGODEError

COMMANDS = (
    "train",
    "search",
    "evaluate",
    "recommend",
    "info",
    "analyze",
    "benchmark",
    "export",
    "launch",
    "propagate",
    "serve",
    "synth",
    "tune",
    "update",
)
"""The subcommands, in --help order: each is ``lightgode.commands.<name>`` with ``register(subparsers)``. A command
module imports only light modules at its top (lightgode.names, commands.common); the library loads inside its run
function, so that parsing and --help stay fast."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message and exit code 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lightgode",
        description="LightGODE: MF training plus a post-training graph ODE "
        "for top-K recommendation from implicit feedback.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"lightgode.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    args.env_data_dir = os.environ.get("LIGHTGODE_DATA")
    args.show_progress = not getattr(args, "quiet", False) and sys.stderr.isatty() or getattr(args, "progress", False)
    if args.show_progress and not args.verbose:
        # interactive runs say what the data layer dropped or fixed (duplicates, empty ids, k-core, split)
        logging.getLogger("lightgode.data").setLevel(logging.INFO)
    elif hasattr(args, "quiet") and not args.quiet and not args.verbose:
        # no terminal (nohup, CI logs): one line per epoch instead of progress bars
        logging.getLogger("lightgode.core.train").setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except LightGODEError as exc:
        msg = " ".join(str(exc).split())
        print(f"lightgode: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lightgode: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a file error the library did not turn into its own: still one line, no traceback
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"lightgode: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
