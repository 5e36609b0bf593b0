"""Argument types and the one error path shared by the step programs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


class StepError(Exception):
    """A problem with the data a step was given; the program prints it and exits 1."""


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, not {text!r}")
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1."""
    value = non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, not {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, not {text!r}")
    return value


def boolean(text: str) -> bool:
    """'true' or 'false', as Argo passes booleans."""
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"must be true or false, not {text!r}")
    return text.lower() == "true"


def existing_file(text: str) -> Path:
    """A path naming a file that exists."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path.resolve()


def staged_file(text: str) -> Path:
    """A path naming a file that exists, made absolute but not resolved: a link the worker staged
    keeps its own name and folder, where its companion files were staged beside it."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path.absolute()


def existing_dir(text: str) -> Path:
    """A path naming a directory that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return path.resolve()


def imzml_arguments(parser: argparse.ArgumentParser, out_dir: str) -> argparse.ArgumentParser:
    """The --imzml, --out-dir and --spectra-per-shard options of the steps that read an imzML."""
    parser.add_argument("--imzml", type=staged_file, required=True,
                        help="the .imzML file (or the worker's link to it); its .ibd must lie beside it")
    parser.add_argument("--out-dir", type=Path, required=True, help=out_dir)
    parser.add_argument("--spectra-per-shard", type=positive_int, required=True,
                        help="spectra in each shard (the last one may hold fewer)")
    return parser


def run(parser: argparse.ArgumentParser, work: Callable[[argparse.Namespace], None],
        argv: list[str] | None = None) -> None:
    """Parse argv and call work(args); a StepError becomes `<prog>: error: ...` and exit 1."""
    args = parser.parse_args(argv)
    try:
        work(args)
    except StepError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(1)
