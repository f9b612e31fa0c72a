"""Subscribers to partitions: Kafka's default partitioner over the msisdn, so every producer agrees.

A partition is the unit of ownership: the instance that owns it holds the
state of its subscribers, processes its events in order and keeps its own
position (a Kafka offset, or a byte offset in an embedded partition file).
``partition_of`` is what a Kafka producer keyed by msisdn computes (murmur2,
positive, modulo the partition count); ``split`` writes an embedded
partitioned log — a folder of ``p-NNNN.jsonl`` files — from a recorded stream.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

import msgspec

__all__ = ["partition_file", "partition_files", "partition_of", "split", "split_file"]

_cache: dict[tuple[str, int], int] = {}

_M = 0x5BD1E995  # murmur2's mixing constant
_MASK = 0xFFFFFFFF
#: the little-endian 32-bit words of a key of 4·n bytes or more, by n (msisdns are short)
_WORDS = [struct.Struct(f"<{n}I").unpack_from for n in range(16)]


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``), as aiokafka's, in
    half its time: the words unpacked at once, Python's unbounded ints masked once a step — a worker of a
    partitioned replay hashes every tag row of the reference to find its own (a million, issue 17)."""
    length = len(data)
    h = 0x9747B28C ^ length
    n = length >> 2
    for k in (_WORDS[n] if n < 16 else struct.Struct(f"<{n}I").unpack_from)(data):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra:
        tail = length & ~3
        if extra >= 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h = ((h ^ data[tail]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)
#: how often ``split_file`` tells its ``progress`` how far it is, in lines (a display redraws at its own pace)
PROGRESS_LINES = 4096


def partition_of(msisdn: str, count: int) -> int:
    """The partition of a subscriber among ``count``: Kafka's default partitioner for key = msisdn."""
    key = (msisdn, count)
    p = _cache.get(key)
    if p is None:
        if len(_cache) > 2_000_000:
            _cache.clear()
        p = _cache[key] = (murmur2(msisdn.encode()) & 0x7FFFFFFF) % count
    return p


def partition_file(folder: str | Path, partition: int) -> Path:
    """The file of one partition in an embedded partitioned log."""
    return Path(folder) / f"p-{partition:04d}.jsonl"


_PARTITION_NAME = re.compile(r"p-(\d+)\.jsonl")  # partition_file's names


def partition_files(folder: str | Path) -> dict[int, Path]:
    """The partition files of a partitioned log, by partition number (``partition_file``'s names)."""
    found = {}
    for path in Path(folder).iterdir():
        m = _PARTITION_NAME.fullmatch(path.name)
        if m is not None:
            found[int(m.group(1))] = path
    if not found:
        raise ValueError(f"{folder}: no partition files (p-NNNN.jsonl) in this folder")
    return dict(sorted(found.items()))


def split(lines: Iterable[bytes], folder: str | Path, count: int) -> list[int]:
    """Append JSON lines to the partition files of ``folder`` by their msisdn; returns lines per partition.

    A line without a readable msisdn goes to partition 0, where a replay reports it;
    blank lines are dropped.
    """
    return _write(lines, folder, count, "ab", flush_lines=0)


def split_file(source: str | Path, folder: str | Path, count: int, flush_lines: int = 65_536,
               progress: Callable[[int, int], None] | None = None) -> list[int]:
    """``split`` for a file of any size, streamed: a recorded log made into a partitioned one
    (``kairos replay --events FOLDER``), its partition files written anew. ``progress``: called every
    ``PROGRESS_LINES`` lines with the lines and bytes read so far (a progress display)."""
    with open(source, "rb") as f:
        read = None if progress is None else (lambda n: progress(n, f.tell()))
        return _write(f, folder, count, "wb", flush_lines, read)


class _Keyed(msgspec.Struct):
    msisdn: str


def _write(lines: Iterable[bytes], folder: str | Path, count: int, mode: str, flush_lines: int,
           read: Callable[[int], None] | None = None) -> list[int]:
    """Lines to their partitions' files, buffered: written every ``flush_lines`` lines (0: at the end);
    ``read`` is told how many lines were read every ``PROGRESS_LINES``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    decode = msgspec.json.Decoder(_Keyed).decode
    outs = [open(partition_file(folder, p), mode) for p in range(count)]
    parts: list[list[bytes]] = [[] for _ in range(count)]
    totals = [0] * count
    try:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                p = partition_of(decode(line).msisdn, count)
            except (msgspec.DecodeError, RecursionError):
                p = 0
            parts[p].append(line if line.endswith(b"\n") else line + b"\n")
            if flush_lines and n % flush_lines == 0:
                _flush(parts, outs, totals)
            if read is not None and n % PROGRESS_LINES == 0:
                read(n)
        _flush(parts, outs, totals)
    finally:
        for out in outs:
            out.close()
    return totals


def _flush(parts: list[list[bytes]], outs: list[BinaryIO], totals: list[int]) -> None:
    for p, chunk in enumerate(parts):
        if chunk:
            outs[p].write(b"".join(chunk))
            totals[p] += len(chunk)
            chunk.clear()
