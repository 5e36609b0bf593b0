"""Listings as kubectl and gh print them: a table that fits the terminal, or -o wide|json|tsv.

Id columns never wrap or get cut (they are what the next command takes); the other columns give
way. `wide` adds the columns a narrow terminal leaves out; json and tsv carry every column.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "wide", "json", "tsv")


@dataclass(frozen=True)
class Column:
    """One column: its header, how to read it from a row, and whether only `-o wide` shows it."""
    header: str
    value: Callable[[object], object]
    wide: bool = False
    is_id: bool = False
    style: Callable[[object], str] | None = None  # the row's style for this cell
    drops: bool = False  # left out of a table the terminal is too narrow for, rather than cut


FLEX_MIN = 10  # the least a column that gives way keeps (shorter content keeps its own width)


def output_option(command):
    """The `-o/--output` option every listing command has."""
    return click.option("--output", "-o", "output", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="table (fits the terminal), wide (every column), json or tsv.")(command)


def emit(console: Console, rows: Sequence, columns: Sequence[Column], output: str) -> None:
    """Print `rows` in the chosen format."""
    if output == "json":
        click.echo(json.dumps([{c.header: c.value(r) for c in columns} for r in rows], indent=2, default=str))
    elif output == "tsv":
        click.echo("\t".join(c.header for c in columns))
        for r in rows:
            click.echo("\t".join(_cell(c.value(r)).replace("\t", " ").replace("\n", " ") for c in columns))
    elif output == "wide":  # every column whole, as long as the lines get (kubectl's -o wide)
        print_table(console, rows, columns, _rules(columns) + sum(_width(rows, c) for c in columns))
    else:
        shown = fitting(rows, [c for c in columns if not c.wide], console.width)
        print_table(console, rows, shown, max(console.width, _least_width(rows, shown)))


def fitting(rows: Sequence, columns: list[Column], width: int) -> list[Column]:
    """The columns, less those that drop (last first) while the table cannot fit `width`."""
    droppable = [c for c in columns if c.drops]
    while _least_width(rows, columns) > width and droppable:
        dropped = droppable.pop()
        columns = [c for c in columns if c is not dropped]
    return columns


def _least_width(rows: Sequence, columns: Sequence[Column]) -> int:
    """The narrowest the table can be: whole ids, the other columns squeezed, and the rules between."""
    return sum(_least(rows, c) for c in columns) + _rules(columns)


def _least(rows: Sequence, column: Column) -> int:
    """An id column's whole width; another's up to FLEX_MIN."""
    return _width(rows, column) if column.is_id else min(_width(rows, column), FLEX_MIN)


def _rules(columns: Sequence[Column]) -> int:
    """The padding and rules between the columns."""
    return 3 * len(columns) - 1


def _width(rows: Sequence, column: Column) -> int:
    return max([len(column.header)] + [len(_cell(column.value(r))) for r in rows])


def print_table(console: Console, rows: Sequence, columns: Sequence[Column], width: int) -> None:
    """A table `width` wide, never narrower than its whole ids (a terminal wraps a long line, never cuts it)."""
    table = Table(show_edge=False)
    for column in columns:
        table.add_column(column.header, no_wrap=column.is_id, overflow="fold", min_width=_least(rows, column))
    for row in rows:
        texts = [_cell(c.value(row)) for c in columns]
        table.add_row(*(Text(t, style=c.style(row) if c.style else "") for c, t in zip(columns, texts)))
    # Console.print caps `width` at the terminal's, so a table wider than it gets a console of its own.
    Console(file=console.file, width=width, force_terminal=console.is_terminal, color_system=console.color_system,
            no_color=console.no_color).print(table)


def _cell(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


class ProgressBar:
    """A rich progress bar on stderr (or nothing when `show` is false), as a context manager
    yielding advance(n); `in_bytes` counts bytes (a file read) rather than items."""

    def __init__(self, label: str, total: int, show: bool = True, in_bytes: bool = False, done: int = 0):
        count = DownloadColumn() if in_bytes else MofNCompleteColumn()
        self._progress = Progress(TextColumn(label), BarColumn(), count, TimeRemainingColumn(),
                                  console=Console(stderr=True), disable=not show)
        self._task = self._progress.add_task(label, total=total, completed=done)

    def __enter__(self) -> Callable[[int], None]:
        self._progress.start()
        return lambda n: self._progress.advance(self._task, n)

    def __exit__(self, *exc) -> None:
        self._progress.stop()
