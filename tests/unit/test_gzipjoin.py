"""Separately compressed parts joined into one gzip document."""

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from lag_exporter.gzipjoin import PartWriter, crc32_combine, join, part

texts = st.binary(max_size=3000) | st.text(alphabet="ab\n{}", max_size=3000).map(str.encode)


@given(a=texts, b=texts)
def test_combined_crc_is_the_crc_of_the_concatenation(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_combined_crc_across_more_zeros_than_the_buffer_holds() -> None:
    a, b = b"head", bytes(3_000_000) + b"tail"
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@settings(max_examples=50)
@given(st.lists(st.lists(texts, max_size=4), max_size=6))
def test_joined_parts_are_one_gzip_document_of_the_texts_in_order(
    writes: list[list[bytes]],
) -> None:
    parts = []
    for pieces in writes:
        writer = PartWriter()
        for piece in pieces:
            writer.write(piece)
        parts.append(writer.close())
    document, size = join(parts)
    text = b"".join(b"".join(pieces) for pieces in writes)
    assert gzip.decompress(document) == text and size == len(text)
    # zlib checks the trailer's CRC and size too, and stops at the first member's end.
    inflate = zlib.decompressobj(wbits=31)
    assert inflate.decompress(document) == text and inflate.eof and not inflate.unused_data


def test_a_large_document_from_parts() -> None:
    lines = [f'm{{g="{i % 97}",p="{i}"}} {i}.0\n'.encode() for i in range(200_000)]
    parts = [part(b"".join(lines[i : i + 30_000])) for i in range(0, len(lines), 30_000)]
    document, size = join(parts)
    text = b"".join(lines)
    assert gzip.decompress(document) == text and size == len(text)
    # Separate parts compress about as well as one stream.
    assert len(document) < 1.05 * len(gzip.compress(text, compresslevel=1))
