"""The kernel's audit netlink protocol, as much of it as the wall needs: read and set the status, list,
add and delete rules, and read the records the kernel sends to the ``AUDIT_NLGRP_READLOG`` group.

Needs root (``CAP_AUDIT_CONTROL`` for rules and status, ``CAP_AUDIT_READ`` for the records). Every call
raises ``AuditError`` (an ``OSError``) with the kernel's errno when the kernel refuses it. The layouts are
``linux/audit.h``'s: ``struct audit_status`` (eleven u32) and ``struct audit_rule_data`` (three u32, a
64-word syscall mask, 64 fields, values and operators, then the strings).
"""

from __future__ import annotations

import errno as errnos
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

NETLINK_AUDIT = 9
NLGRP_READLOG = 1
# message types
GET, SET, LIST_RULES, ADD_RULE, DEL_RULE = 1000, 1001, 1013, 1011, 1012
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
# status mask bits
STATUS_ENABLED, STATUS_BACKLOG_LIMIT = 0x1, 0x10
# rule lists and actions
FILTER_TASK, FILTER_EXIT = 0x01, 0x04
NEVER, ALWAYS = 0, 2
# fields
F_UID, F_ARCH, F_EXIT, F_ARG1, F_ARG2, F_FILTERKEY = 1, 11, 103, 201, 202, 210
# operators
EQUAL, NOT_EQUAL, BIT_MASK = 0x40000000, 0x30000000, 0x08000000
MAX_FIELDS = 64
BITMASK_WORDS = 64
STATUS = struct.Struct("=11I")
RULE_HEAD = struct.Struct("=3I")
NLMSG = struct.Struct("=IHHII")
RECV_BUF = 1 << 16
RCVBUF = 64 << 20  # the record socket's buffer, kernel memory taken only as records wait: ~50,000 records
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux's; Python's socket module lacks it


class AuditError(OSError):
    """The kernel refused an audit request (its errno), or audit is missing here."""


@dataclass(frozen=True)
class Status:
    enabled: int
    pid: int
    backlog_limit: int
    lost: int
    backlog: int


@dataclass(frozen=True)
class Rule:
    """One audit rule: its list (``FILTER_*``), action, syscalls (numbers; empty: all) and fields as
    ``(field, operator, value)``; ``key`` goes in as ``F_FILTERKEY``."""

    list: int
    action: int
    syscalls: tuple[int, ...] = ()
    fields: tuple[tuple[int, int, int], ...] = ()
    key: str = ""
    all_syscalls: bool = field(default=False)

    def pack(self) -> bytes:
        fields = list(self.fields)
        buf = self.key.encode()
        if buf:
            fields.append((F_FILTERKEY, EQUAL, len(buf)))
        if len(fields) > MAX_FIELDS:
            raise ValueError(f"an audit rule holds at most {MAX_FIELDS} fields")
        mask = [0] * BITMASK_WORDS
        if self.all_syscalls or not self.syscalls:
            mask = [0xFFFFFFFF] * BITMASK_WORDS
        for nr in self.syscalls:
            mask[nr // 32] |= 1 << (nr % 32)
        pad = [0] * (MAX_FIELDS - len(fields))
        names = [f for f, _, _ in fields] + pad
        values = [v & 0xFFFFFFFF for _, _, v in fields] + pad
        ops = [o for _, o, _ in fields] + pad
        body = struct.pack(
            f"=3I{BITMASK_WORDS}I{MAX_FIELDS}I{MAX_FIELDS}I{MAX_FIELDS}II",
            self.list,
            self.action,
            len(fields),
            *mask,
            *names,
            *values,
            *ops,
            len(buf),
        )
        return body + buf

    @classmethod
    def unpack(cls, data: bytes) -> Rule:
        n = 3 + BITMASK_WORDS + 3 * MAX_FIELDS + 1
        words = struct.unpack_from(f"={n}I", data)
        flags, action, count = words[0], words[1], words[2]
        mask = words[3 : 3 + BITMASK_WORDS]
        names = words[3 + BITMASK_WORDS : 3 + BITMASK_WORDS + MAX_FIELDS]
        values = words[3 + BITMASK_WORDS + MAX_FIELDS : 3 + BITMASK_WORDS + 2 * MAX_FIELDS]
        ops = words[3 + BITMASK_WORDS + 2 * MAX_FIELDS : 3 + BITMASK_WORDS + 3 * MAX_FIELDS]
        strings = data[4 * n :]
        key, fields, off = "", [], 0
        for i in range(min(count, MAX_FIELDS)):
            if names[i] == F_FILTERKEY:
                key = strings[off : off + values[i]].decode(errors="replace")
                off += values[i]
                continue
            fields.append((names[i], ops[i], values[i]))
        if flags == FILTER_TASK:  # the mask means nothing to a task rule (and comes back changed)
            return cls(flags, action, (), tuple(fields), key)
        all_set = all(w == 0xFFFFFFFF for w in mask)
        calls = () if all_set else tuple(w * 32 + b for w, word in enumerate(mask) for b in range(32) if word >> b & 1)
        return cls(flags, action, calls, tuple(fields), key, all_set)


class Link:
    """A netlink socket to the kernel's audit subsystem (``close`` it)."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        except OSError as err:
            raise AuditError(err.errno, f"no audit netlink here: {os.strerror(err.errno or 0)}") from err
        self.sock.bind((0, 0))
        self.sock.settimeout(5.0)
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, kind: int, payload: bytes, flags: int = NLM_F_REQUEST | NLM_F_ACK) -> int:
        self._seq += 1
        self.sock.sendto(NLMSG.pack(NLMSG.size + len(payload), kind, flags, self._seq, 0) + payload, (0, 0))
        return self._seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """The kernel's answers to request ``seq``, up to its ack or ``NLMSG_DONE``; raises its error."""
        while True:
            data = self.sock.recv(RECV_BUF)
            off = 0
            while off + NLMSG.size <= len(data):
                length, kind, _flags, got_seq, _pid = NLMSG.unpack_from(data, off)
                if length < NLMSG.size:
                    return
                body = data[off + NLMSG.size : off + length]
                off += (length + 3) & ~3
                if got_seq != seq:
                    continue
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", body)
                    if code:
                        raise AuditError(-code, os.strerror(-code))
                    return
                if kind == NLMSG_DONE:
                    return
                yield kind, body

    def status(self) -> Status:
        seq = self._send(GET, b"", NLM_F_REQUEST)
        for kind, body in self._replies(seq):
            if kind == GET:
                w = STATUS.unpack_from(body.ljust(STATUS.size, b"\0"))
                return Status(enabled=w[1], pid=w[3], backlog_limit=w[5], lost=w[6], backlog=w[7])
        raise AuditError(errnos.EPROTO, "the kernel sent no audit status")

    def set(self, *, enabled: int | None = None, backlog_limit: int | None = None) -> None:
        mask = STATUS_ENABLED if enabled is not None else 0
        mask |= STATUS_BACKLOG_LIMIT if backlog_limit is not None else 0
        payload = STATUS.pack(mask, enabled or 0, 0, 0, 0, backlog_limit or 0, 0, 0, 0, 0, 0)
        for _ in self._replies(self._send(SET, payload)):
            pass

    def rules(self) -> list[Rule]:
        # no ack asked: the kernel sends the list from a thread of its own, after the ack, ending with DONE
        seq = self._send(LIST_RULES, b"", NLM_F_REQUEST)
        return [Rule.unpack(body) for kind, body in self._replies(seq) if kind == LIST_RULES]

    def add(self, rule: Rule) -> None:
        for _ in self._replies(self._send(ADD_RULE, rule.pack())):
            pass

    def delete(self, rule: Rule) -> None:
        for _ in self._replies(self._send(DEL_RULE, rule.pack())):
            pass


class Reader:
    """The records the kernel multicasts to ``AUDIT_NLGRP_READLOG``, as ``(type, text)``."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
            self.sock.bind((0, 1 << (NLGRP_READLOG - 1)))
        except OSError as err:
            code = err.errno or errnos.EPERM
            raise AuditError(code, f"cannot read audit records: {os.strerror(code)}") from err
        try:  # root may go past net.core.rmem_max: a flood of denials must not outrun the reader
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self._buf = bytearray(RECV_BUF)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self.sock.close()

    def read(self, timeout: float | None) -> list[tuple[int, str]]:
        """The records of one receive (empty when ``timeout`` went by)."""
        self.sock.settimeout(timeout)
        try:  # into one buffer kept for it: a fresh 64 KiB per record, shrunk, fragments the heap
            got = self.sock.recv_into(self._buf)
        except TimeoutError:
            return []
        data = bytes(self._view[:got])
        out = []
        off = 0
        while off + NLMSG.size <= len(data):
            length, kind, _f, _s, _p = NLMSG.unpack_from(data, off)
            if length < NLMSG.size:
                break
            out.append((kind, data[off + NLMSG.size : off + length].rstrip(b"\0").decode(errors="replace")))
            off += (length + 3) & ~3
        return out
