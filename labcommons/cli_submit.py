"""`labcommons submit` of a file of any size: batches read from the file as it streams, a
progress bar, and a checkpoint beside the file so a rerun continues where an interrupted one stopped.

Each batch is one transaction in the service (all of it or none of it); a file larger than one
batch is therefore written batch by batch, in file order, so a link may name an entity of an
earlier batch but not of a later one. After each batch the checkpoint (`.<file>.labcommons-submit`)
records the byte offset reached and a digest of the bytes before it; a rerun whose file still
starts with those bytes seeks there (fixing a later row keeps the checkpoint good). A batch sent
but not yet checkpointed when the run died is sent again: submission upserts by submitter_id, so
it comes back unchanged, and nothing is written twice.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from labcommons.cli_output import ProgressBar
from metadata.idl import metadata_thrift as T

CHUNK_BYTES = 1 << 20
DIGEST_CHUNK = 1 << 22
DECODER = json.JSONDecoder()


@dataclass
class Position:
    """Where a file's submission stands: the bytes and entities done, and TSV records before."""
    offset: int = 0
    entities: int = 0
    records: int = 0


@dataclass
class Batch:
    body: str       # a submission body: the TSV header and rows, or a JSON array
    start: Position  # where the batch begins in the file
    end: Position   # where the next one begins
    count: int


class Checkpoint:
    """The position of one file's submission to one project, kept beside the file. The digest
    of the file's beginning is kept running, so each save hashes only the bytes since the last."""

    def __init__(self, file: Path, project: str, fmt: str):
        self.file, self.key = file, {"project": project, "format": fmt}
        self.path = file.with_name(f".{file.name}.labcommons-submit")
        self._digest, self._hashed = hashlib.sha256(), 0

    def load(self) -> Position:
        """The saved position if it is for this project and the file still begins as it did; else the start."""
        try:
            saved = json.loads(self.path.read_text())
            position = Position(**saved["position"])
        except (OSError, ValueError, KeyError, TypeError):
            return Position()
        self._digest, self._hashed = hashlib.sha256(), 0  # the file as it is now, from its first byte
        if saved.get("key") != self.key or saved.get("digest") != self._digest_to(position.offset):
            self._digest, self._hashed = hashlib.sha256(), 0
            return Position()
        return position

    def save(self, position: Position) -> bool:
        """Write the position (atomically); False when the folder is not writable."""
        record = {"key": self.key, "position": asdict(position), "digest": self._digest_to(position.offset)}
        scratch = self.path.with_name(self.path.name + ".tmp")
        try:
            scratch.write_text(json.dumps(record))
            os.replace(scratch, self.path)
            return True
        except OSError:
            return False

    def _digest_to(self, offset: int) -> str:
        """sha256 of the file's first offset bytes (offsets only grow, as the batches do)."""
        with self.file.open("rb") as handle:
            handle.seek(self._hashed)
            while self._hashed < offset and (chunk := handle.read(min(DIGEST_CHUNK, offset - self._hashed))):
                self._digest.update(chunk)
                self._hashed += len(chunk)
        return self._digest.copy().hexdigest()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Totals:
    """What the batches of one run did, added up; `resumed` is where the run began."""
    resumed: Position
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    entities: int = 0

    def add(self, result) -> None:
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.entities += len(result.entities)


def submit_file(client, file: Path, project: str, fmt: str, size: int, show: bool = True) -> Totals:
    """Submit the file in batches of `size` entities, from its checkpoint on; clear the checkpoint at the end.
    ValueError when the file cannot be read; the service's ValidationError located in the file."""
    checkpoint = Checkpoint(file, project, fmt)
    totals = Totals(checkpoint.load())
    reached = totals.resumed.offset
    with ProgressBar("submitting", file.stat().st_size, show, in_bytes=True, done=reached) as advance:
        for batch in batches(file, fmt, size, totals.resumed):
            try:
                totals.add(client.submit(project, body=batch.body, fmt=fmt))
            except T.ValidationError as error:
                raise located(error, batch) from None
            checkpoint.save(batch.end)
            advance(batch.end.offset - reached)
            reached = batch.end.offset
    if not totals.entities and not totals.resumed.entities:  # nothing in it: the service says so, its way
        client.submit(project, body=file.read_text(encoding="utf-8", errors="replace"), fmt=fmt)
    checkpoint.clear()
    return totals


def located(error, batch: Batch):
    """The service's refusal of one batch, its rows and entity indices counted in the whole file."""
    for issue in error.issues or []:
        issue.row = issue.row + batch.start.records if issue.row else issue.row
        issue.index = issue.index + batch.start.entities if issue.index >= 0 else issue.index
    before = batch.start.entities
    error.message = (f"{error.message} (in the batch of entities {before + 1:,} to {before + batch.count:,} of the "
                     f"file; the problems below are located in the file; "
                     + (f"the {before:,} entities before it were written: fix the file and run the same command "
                        "again to continue from this batch)" if before else "nothing was written)"))
    return error


def batches(file: Path, fmt: str, size: int, start: Position) -> Iterator[Batch]:
    """The file's entities from `start` on, `size` to a batch."""
    return tsv_batches(file, size, start) if fmt == "tsv" else json_batches(file, size, start)


# -- TSV ----------------------------------------------------------------------------------

def tsv_batches(file: Path, size: int, start: Position) -> Iterator[Batch]:
    with file.open("rb") as handle:
        header = handle.readline()
        position = start if start.offset else Position(handle.tell())
        handle.seek(position.offset)
        lines: list[bytes] = []
        first = position
        for record in _tsv_records(handle):
            position = Position(position.offset + len(record), position.entities + bool(record.strip()),
                                position.records + 1)
            lines.append(record)
            if position.entities - first.entities == size:
                yield Batch(_text(header + b"".join(lines)), first, position, size)
                lines, first = [], position
        if position.entities > first.entities:
            yield Batch(_text(header + b"".join(lines)), first, position, position.entities - first.entities)


def _tsv_records(handle) -> Iterator[bytes]:
    """Raw records: lines, joined while a quoted cell spans them (an odd count of quotes is open)."""
    pending = b""
    for line in handle:
        pending += line
        if pending.count(b'"') % 2 == 0:
            yield pending
            pending = b""
    if pending:
        yield pending


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"the file is not UTF-8 text ({error.reason} at a byte of this batch)") from None


# -- JSON ---------------------------------------------------------------------------------

def json_batches(file: Path, size: int, start: Position) -> Iterator[Batch]:
    """Batches of a JSON array's elements, each sent as written (a file holding one object: one batch)."""
    reader = _JsonArray(file, start)
    first, items = reader.position, []
    for text in reader:
        items.append(text)
        if len(items) == size:
            yield Batch(f"[{','.join(items)}]", first, reader.position, size)
            first, items = reader.position, []
    if items:
        yield Batch(f"[{','.join(items)}]", first, reader.position, len(items))


class _JsonArray:
    """The raw text of each element of the JSON array in a file, from a position on; `position`
    is the byte offset after the last element handed out."""

    def __init__(self, file: Path, start: Position):
        self.handle, self.position = file.open("rb"), start
        self.decoder, self.text = codecs.getincrementaldecoder("utf-8")(), ""
        self.at, self.base_chars, self.eof = 0, 0, False  # base_chars: chars of text already counted in offset
        self.handle.seek(start.offset)
        self.opening = start.offset == 0

    def __iter__(self) -> Iterator[str]:
        try:
            if self.opening:
                if self._next_char() != "[":
                    yield from self._whole()
                    return
                self.at += 1
                if self._next_char() == "]":
                    return
                yield self._element()
            while (mark := self._next_char()) != "]":
                if mark != ",":
                    raise ValueError(f"the JSON array is malformed after entity {self.position.entities}: "
                                     f"expected , or ] but found {mark or 'the end of the file'!r}")
                self.at += 1
                yield self._element()
        finally:
            self.handle.close()

    def _whole(self) -> Iterator[str]:
        """A file that is not an array: one entity, the service says what is wrong with it."""
        while self._fill():
            pass
        self.position = Position(self.handle.tell(), 1)
        yield self.text.strip()

    def _next_char(self) -> str:
        """The next character that is not blank (not consumed; '' at the end)."""
        while True:
            while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
                self.at += 1
            if self.at < len(self.text) or not self._fill():
                return self.text[self.at] if self.at < len(self.text) else ""

    def _element(self) -> str:
        self._next_char()
        while True:
            try:
                _, end = DECODER.raw_decode(self.text, self.at)
                if end < len(self.text) or self.eof:  # a value ending the buffer may go on in the next chunk
                    break
                self._fill()
            except json.JSONDecodeError as error:
                if not self._fill():
                    raise ValueError(f"the JSON is malformed in entity {self.position.entities}: {error.msg}") from None
        element, self.at = self.text[self.at:end], end
        self._advance()
        return element

    def _advance(self) -> None:
        """Count the consumed characters as bytes, and drop them once the buffer has grown."""
        done = self.text[self.base_chars:self.at].encode()
        self.position = Position(self.position.offset + len(done), self.position.entities + 1)
        self.base_chars = self.at
        if self.at > CHUNK_BYTES:
            self.text, self.at, self.base_chars = self.text[self.at:], 0, 0

    def _fill(self) -> bool:
        """Read another chunk; False at the end of the file."""
        if self.eof:
            return False
        chunk = self.handle.read(CHUNK_BYTES)
        self.eof = not chunk
        self.text += self.decoder.decode(chunk, final=self.eof)
        return bool(chunk)
