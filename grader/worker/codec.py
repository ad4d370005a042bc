"""The wire format between the grader and a worker: plain data only.

A message is one frame on a stream socket:

    !Q body length, then the body: !I header length, !I buffer count, header (UTF-8
    JSON), then per buffer !Q length + bytes

The leading length lets a reader take a whole frame in two reads, then parse it in
memory: a round trip costs a few system calls, not one per field.

The JSON header carries the structure; arrays travel as raw C-ordered bytes in the
buffers. Only plain data can be expressed: None, bool, int, float, str, lists,
tuples, dicts with str keys, NumPy arrays and scalars of numeric dtype, and (from
the grader to a worker only) a `numpy.random.Generator` as its bit generator's
state. Never pickle: the grader must be able to decode what a hostile worker
sends without running any of its code.

Every channel from a worker to the grader is bounded, so that no worker can make the
grader hold more than a few tens of MiB (a reply is refused by its declared length,
before any buffer for it exists; the grader then kills the worker and the call fails
with `submission.bad_return`):

- one frame from a worker: at most MAX_REPLY_BYTES = 16 MiB, its JSON header at most
  MAX_REPLY_HEADER_BYTES = 1 MiB. The largest replies of the cnn, rnn, cs231n and
  fman45 checks are 65,723 bytes (headers 9,115 bytes), measured over every example
  and variant: 255x (115x for headers) room. A course's own checks (`--course`) must
  keep a returned value under 15 MiB (about 2 million float64): a worker refuses a
  larger one itself, as a bad return that says so;
- everything the grader reads from a worker while one request waits for its answer,
  frames that answer no request (stale or forged ids) included: at most
  MAX_CALL_BYTES = 32 MiB. A worker writing frames between calls has them counted
  against the next call;
- frames waiting to be read: none is read ahead. A socket's or a pipe's own kernel
  buffer holds what a worker writes before the grader asks for it (the worker then
  blocks); a spawned worker's reader thread reads one frame only when the grader waits
  for one (queue length 1).

Frames to a worker (the grader's own requests, a submission's source among them) keep
the larger MAX_TOTAL_BYTES / MAX_HEADER_BYTES limits: only the worker reads them.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time

import numpy as np
import numpy.random  # noqa: F401 - NumPy loads it lazily; a sandbox may not let it later

from grader.worker.handles import Handle

# Limits applied when decoding a request, in a worker.
MAX_HEADER_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024
# Limits on what a worker sends the grader (see the module's docstring).
MIB = 1024 * 1024
MAX_REPLY_BYTES = 16 * MIB
MAX_REPLY_HEADER_BYTES = 1 * MIB
MAX_CALL_BYTES = 32 * MIB
MAX_DEPTH = 16
MAX_NODES = 100_000
MAX_STR = 100_000
# bool, signed and unsigned ints, floats, complex: no object, void, string or datetime.
ALLOWED_KINDS = "biufc"


class CodecError(ValueError):
    """The data cannot be expressed in (or was not valid) plain-data form."""


class FrameTooLarge(CodecError):
    """A frame whose declared length is over the reader's limit: refused before any
    buffer for it is allocated. `size` is the whole frame's length in bytes."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"a message of {mib(size)}, more than the {mib(limit)} allowed")
        self.size, self.limit = size, limit


def mib(n: int) -> str:
    """A byte count for a message: "16 MiB", "0.06 MiB"."""
    value = n / MIB
    return f"{value:.0f} MiB" if value >= 10 else f"{value:.2g} MiB"


class FrameTimeout(TimeoutError):
    """The peer did not send a whole frame before the deadline."""


class PeerClosed(ConnectionError):
    """The peer closed its end (for a worker: it died or exited)."""


# ---------------------------------------------------------------------- encode
def encode(value, *, allow_rng: bool = False) -> tuple[object, list[bytes]]:
    """Turn `value` into (json-able tree, buffers). Raises CodecError for anything
    that is not plain data; the message names the offending type."""
    buffers: list[bytes] = []

    def enc(v, depth):
        if depth > MAX_DEPTH:
            raise CodecError("the value is nested too deeply")
        if v is None or type(v) in (bool, int, str):
            return v
        if type(v) is float:
            return {"f": repr(v)}  # repr keeps nan/inf and every bit of the value
        if type(v) is list:
            return {"list": [enc(item, depth + 1) for item in v]}
        if type(v) is tuple:
            return {"tuple": [enc(item, depth + 1) for item in v]}
        if type(v) is dict:
            if not all(type(k) is str for k in v):
                raise CodecError("dict keys must be strings")
            return {"dict": [[k, enc(item, depth + 1)] for k, item in v.items()]}
        if isinstance(v, (np.ndarray, np.generic)) and not isinstance(v, np.random.Generator):
            arr = np.asarray(v)
            if type(v) is not np.ndarray and not isinstance(v, np.generic):
                raise CodecError(f"{type(v).__name__} is an ndarray subclass, not a plain ndarray")
            if arr.dtype.kind not in ALLOWED_KINDS or arr.dtype.fields is not None:
                raise CodecError(f"arrays of dtype {arr.dtype} are not plain numbers")
            buffers.append(np.ascontiguousarray(arr).tobytes())
            node = {"nd": len(buffers) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape)}
            if isinstance(v, np.generic):
                node["scalar"] = True
            return node
        if allow_rng and isinstance(v, np.random.Generator):
            return {"rng": v.bit_generator.state}
        if type(v) is Handle:
            return {"handle": v.id}
        raise CodecError(f"values of type {type(v).__name__} cannot be sent, only plain data")

    return enc(value, 0), buffers


# ---------------------------------------------------------------------- decode
def decode(tree, buffers: list[bytes], *, allow_rng: bool = False):
    """Inverse of `encode`, for untrusted input: checks every node, dtype and size."""
    count = 0

    def dec(node, depth):
        nonlocal count
        count += 1
        if count > MAX_NODES or depth > MAX_DEPTH:
            raise CodecError("the value is too large or nested too deeply")
        if node is None or type(node) in (bool, int):
            return node
        if type(node) is str:
            if len(node) > MAX_STR:
                raise CodecError("a string is too long")
            return node
        if type(node) is not dict or len(node) == 0:
            raise CodecError("malformed value")
        if "f" in node:
            return float(node["f"])
        if "list" in node:
            return [dec(item, depth + 1) for item in _as_list(node["list"])]
        if "tuple" in node:
            return tuple(dec(item, depth + 1) for item in _as_list(node["tuple"]))
        if "dict" in node:
            out = {}
            for pair in _as_list(node["dict"]):
                if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str:
                    raise CodecError("malformed dict")
                out[pair[0]] = dec(pair[1], depth + 1)
            return out
        if "nd" in node:
            return _decode_array(node, buffers)
        if "rng" in node and allow_rng:
            return _decode_rng(node["rng"])
        if "handle" in node and type(node["handle"]) is int:
            return Handle(node["handle"])
        raise CodecError("malformed value")

    return dec(tree, 0)


def _as_list(v):
    if type(v) is not list:
        raise CodecError("malformed sequence")
    return v


def _decode_array(node, buffers):
    try:
        dtype = np.dtype(node["dtype"])
        shape = tuple(int(s) for s in node["shape"])
        raw = buffers[int(node["nd"])]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CodecError("malformed array") from exc
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CodecError(f"arrays of dtype {dtype} are not plain numbers")
    if any(s < 0 for s in shape) or len(shape) > 32:
        raise CodecError("malformed array shape")
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size * dtype.itemsize != len(raw):
        raise CodecError("array data does not match its shape")
    arr = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return arr[()] if node.get("scalar") else arr


def _decode_rng(state):
    name = state.get("bit_generator") if isinstance(state, dict) else None
    bit_generator_cls = getattr(np.random, str(name), None)
    if bit_generator_cls is None or not isinstance(bit_generator_cls, type) or not issubclass(
        bit_generator_cls, np.random.BitGenerator
    ):
        raise CodecError("malformed random generator")
    bit_generator = bit_generator_cls()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


# ---------------------------------------------------------------------- frames
def send_message(sock: socket.socket, header: dict, buffers: list[bytes] = ()) -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    parts = [struct.pack("!II", len(head), len(buffers)), head]
    for buf in buffers:
        parts.append(struct.pack("!Q", len(buf)))
        parts.append(buf)
    body_length = sum(map(len, parts))
    parts.insert(0, struct.pack("!Q", body_length))
    sock.sendall(b"".join(parts) if body_length < (1 << 20) else _join_large(parts))


def _join_large(parts):
    # Avoid one huge temporary for big arrays: sendall takes a memoryview of a bytearray.
    out = bytearray()
    for p in parts:
        out += p
    return memoryview(out)


def recv_message(
    sock: socket.socket, deadline: float | None = None, max_total: int = MAX_TOTAL_BYTES
) -> tuple[dict, list[bytes]]:
    """Read one frame. Raises FrameTimeout past `deadline` (time.monotonic()),
    PeerClosed on EOF, CodecError on a frame that breaks the limits."""
    header, buffers, _size = recv_frame(sock, deadline, max_frame=8 + max_total + MAX_HEADER_BYTES)
    return header, buffers


def recv_reply(sock, deadline: float | None = None, room: int = MAX_REPLY_BYTES) -> tuple[dict, list, int]:
    """Read one frame from a worker, in the grader: at most MAX_REPLY_BYTES and `room`
    bytes (what is left of the call's MAX_CALL_BYTES). -> (header, buffers, frame size)."""
    return recv_frame(sock, deadline, max_frame=min(MAX_REPLY_BYTES, room), max_header=MAX_REPLY_HEADER_BYTES)


def recv_frame(sock, deadline: float | None = None, *, max_frame: int,
               max_header: int = MAX_HEADER_BYTES) -> tuple[dict, list, int]:
    """Read one frame of at most `max_frame` bytes (its 8-byte length included) and a
    header of at most `max_header`. A longer frame is refused by its declared length,
    before anything else is read or allocated (FrameTooLarge). -> (header, buffers,
    the frame's size)."""
    (length,) = struct.unpack("!Q", _recv_exact(sock, 8, deadline))
    if 8 + length > max_frame:
        raise FrameTooLarge(8 + length, max_frame)
    body = memoryview(_recv_exact(sock, length, deadline))
    try:
        head_len, n_buf = struct.unpack_from("!II", body, 0)
        if head_len > max_header:
            raise CodecError(f"a message header of {mib(head_len)}, more than the {mib(max_header)} allowed")
        if n_buf > MAX_NODES:
            raise CodecError("the message is too large")
        pos = 8 + head_len
        header = json.loads(bytes(body[8:pos]))
        buffers = []
        for _ in range(n_buf):
            (n,) = struct.unpack_from("!Q", body, pos)
            pos += 8
            if pos + n > length:
                raise CodecError("a buffer runs past the end of the message")
            buffers.append(body[pos:pos + n])
            pos += n
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CodecError("the message is malformed") from exc
    if type(header) is not dict:
        raise CodecError("the message is not a JSON object")
    if pos != length:
        raise CodecError("the message has bytes left over")
    return header, buffers, 8 + length


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout()
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            k = sock.recv_into(view[got:], min(n - got, 1 << 22))
        except socket.timeout as exc:
            raise FrameTimeout() from exc
        if k == 0:
            raise PeerClosed()
        got += k
    return buf


class PipeChannel:
    """The socket methods the frame functions use, over a pair of pipe descriptors:
    for workers spawned as plain processes (any platform, no fork, no fd passing)."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd

    def settimeout(self, _seconds) -> None:
        """Pipes have no timeouts here: the grader waits on a reader thread instead."""

    def recv_into(self, view: memoryview, n: int) -> int:
        data = os.read(self.read_fd, n)
        view[: len(data)] = data
        return len(data)

    def sendall(self, data) -> None:
        view = memoryview(data)
        while len(view):
            view = view[os.write(self.write_fd, view):]
