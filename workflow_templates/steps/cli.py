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


def run(parser: argparse.ArgumentParser, work: Callable[[argparse.Namespace], None],
        argv: list[str] | None = None) -> None:
    """Parse argv and call work(args); a StepError becomes `<prog>: error: ...` and exit 1."""
    args = parser.parse_args(argv)
    try:
        work(args)
    except StepError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        sys.exit(1)
