"""The wire format thrift/metadata.thrift's header documents, spoken byte by byte over a plain
socket (no thriftpy2 on this side): what a Java, Node.js or Go client sends and reads. Unframed
strict binary protocol; the token is each call's argument 1; a framed call is not served."""
from __future__ import annotations

import socket
import struct

import pytest

CALL, REPLY = 1, 2
STOP, BOOL, BYTE, DOUBLE, I16, I32, I64, STRING, STRUCT, MAP, SET, LIST = 0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15
FIXED = {BOOL: 1, BYTE: 1, DOUBLE: 8, I16: 2, I32: 4, I64: 8}


def call(name: str, token: str, seqid: int = 7) -> bytes:
    """A strict binary CALL of a one-argument method: version|type, name, seqid, then the args struct."""
    head = struct.pack("!II", 0x80010000 | CALL, len(name)) + name.encode() + struct.pack("!i", seqid)
    token_bytes = token.encode()
    return head + struct.pack("!bhI", STRING, 1, len(token_bytes)) + token_bytes + bytes([STOP])


class Reader:
    """Reads a strict binary reply from a socket: structs as {field id: value}."""

    def __init__(self, sock: socket.socket):
        self.file = sock.makefile("rb")

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        data = self.file.read(size)
        assert len(data) == size, "the connection closed"
        return struct.unpack(fmt, data)

    def message(self) -> tuple[int, str, int, dict]:
        version_and_type, length = self.take("!II")
        assert version_and_type & 0xFFFF0000 == 0x80010000  # strict: version 1 in the high bits
        name = self.file.read(length).decode()
        return version_and_type & 0xFF, name, self.take("!i")[0], self.value(STRUCT)

    def value(self, kind: int):
        if kind in FIXED:
            return self.take({BOOL: "!?", BYTE: "!b", DOUBLE: "!d", I16: "!h", I32: "!i", I64: "!q"}[kind])[0]
        if kind == STRING:
            return self.file.read(self.take("!I")[0]).decode()
        if kind in (LIST, SET):
            element, size = self.take("!bI")
            return [self.value(element) for _ in range(size)]
        if kind == MAP:
            key, element, size = self.take("!bbI")
            return dict((self.value(key), self.value(element)) for _ in range(size))
        fields = {}
        while (field_type := self.take("!b")[0]) != STOP:
            field_id = self.take("!h")[0]
            fields[field_id] = self.value(field_type)
        return fields


@pytest.fixture
def wire(server):
    with socket.create_connection(("127.0.0.1", server.bound_port()), timeout=10) as sock:
        yield sock


def test_a_strict_binary_call_with_the_token_as_argument_1_is_answered(wire, server):
    wire.sendall(call("whoami", server.settings.admin_token_path.read_text().strip()))
    kind, name, seqid, result = Reader(wire).message()
    assert (kind, name, seqid) == (REPLY, "whoami", 7)
    identity = result[0]  # field 0 of the result: the return value (Identity)
    assert identity[1] == "local-admin" and identity[2] == ["admin"]


def test_a_bad_token_comes_back_as_the_declared_exception(wire):
    wire.sendall(call("whoami", "not-a-token", seqid=8))
    kind, _, seqid, result = Reader(wire).message()
    assert (kind, seqid) == (REPLY, 8)
    assert result[1][1] == "token_invalid" and result[1][2]  # throws (1: Unauthenticated unauthenticated): code, message


def test_a_framed_call_is_not_served(wire, server):
    body = call("whoami", server.settings.admin_token_path.read_text().strip())
    wire.sendall(struct.pack("!I", len(body)) + body)  # TFramedTransport: a 4-byte length first
    assert wire.recv(1) == b""  # the service closes the connection
