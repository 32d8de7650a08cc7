"""One gzip document from parts compressed separately, in any order.

The exposition's families fill up side by side while the view is walked
once, but the document lists them one after the other. Compressing each
family's text as it is produced, and joining the parts at the end, keeps
only compressed text in memory (a 25th of the 60 MB of text at 10^5 group
partitions) instead of all of it.

Each part is a raw deflate stream ended by a sync flush, so it stops on a
byte boundary without a final block: such streams concatenate into one
valid stream (as pigz does). The gzip trailer needs the CRC-32 of the whole
text, which is combined from the parts' CRCs. Only zlib, no other library.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

# ID1 ID2, deflate, no flags, no mtime (the document's time is in its
# samples), no extra flags, OS unknown.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
# A final, empty, fixed-Huffman block: ends the joined deflate stream.
_FINAL_BLOCK = b"\x03\x00"
_ZEROS = bytes(1 << 20)
_MASK = 0xFFFFFFFF


class Part(NamedTuple):
    deflated: bytes  # raw deflate, sync-flushed, no final block
    crc: int  # CRC-32 of the text
    size: int  # bytes of text


class PartWriter:
    """Compresses one part's text as it comes."""

    __slots__ = ("_crc", "_deflate", "_out", "_size")

    def __init__(self) -> None:
        # Level 1: a third of level 6's time for an output under twice the
        # size; zlib releases the GIL while it works.
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
        self._out: list[bytes] = []
        self._crc = 0
        self._size = 0

    def write(self, text: bytes) -> None:
        self._crc = zlib.crc32(text, self._crc)
        self._size += len(text)
        out = self._deflate.compress(text)
        if out:
            self._out.append(out)

    def close(self) -> Part:
        self._out.append(self._deflate.flush(zlib.Z_SYNC_FLUSH))
        return Part(b"".join(self._out), self._crc, self._size)


def part(text: bytes) -> Part:
    writer = PartWriter()
    writer.write(text)
    return writer.close()


def _shift(crc: int, n: int) -> int:
    """The CRC register `crc` advanced over n zero bytes, without the pre- and
    post-conditioning: crc32(0^n, ~crc) undone."""
    state = ~crc & _MASK
    view = memoryview(_ZEROS)
    while n > 0:
        k = min(n, len(_ZEROS))
        state = zlib.crc32(view[:k], state)
        n -= k
    return ~state & _MASK


def crc32_combine(crc_a: int, crc_b: int, size_b: int) -> int:
    """CRC-32 of A followed by B, from crc32(A), crc32(B) and len(B).

    crc32(B, start=a) = crc32(0^n, a) ^ crc32(B) ^ crc32(0^n): the register
    update is linear in the start value and the data. The zero bytes cost
    what the text would (about 3 GB/s), without keeping the text.
    """
    if size_b == 0:
        return crc_a
    if crc_a == 0:
        return crc_b  # the shift is linear: zero stays zero
    return _shift(crc_a, size_b) ^ crc_b


def join(parts: Iterable[Part]) -> tuple[bytes, int]:
    """(the gzip document of the parts' texts in order, the text's size)."""
    out = [_HEADER]
    crc = size = 0
    for p in parts:
        out.append(p.deflated)
        crc = crc32_combine(crc, p.crc, p.size)
        size += p.size
    out.append(_FINAL_BLOCK)
    out.append(struct.pack("<II", crc, size & _MASK))
    return b"".join(out), size
