"""Just enough of the Xet formats (xet-core) to rebuild files the client uploads through Xet.

- A xorb is a run of chunks, each ``[version u8][compressed_len u24][scheme u8][len u24]``
  (little-endian) plus the body (scheme 0 raw, 1 LZ4 frame, 2 byte-grouped-by-4 then LZ4),
  optionally followed by a footer starting with ``XETBLOB``.
- A chunk's hash is BLAKE3 keyed with DATA_KEY; a xorb's hash is the aggregated Merkle hash of
  its (chunk hash, length) list with INTERNAL_NODE_KEY (xet-core merklehash).
- A shard's file-info section lists, per file, segments (xorb hash, chunk range) and,
  optionally, verification entries and a metadata extension carrying the file's sha256.
- Hashes are 32 bytes read as four little-endian u64; their hex form prints each u64
  big-endian, i.e. each 8-byte group reversed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import lz4.frame

from tether.errors import HubIntegrityError

DATA_KEY = bytes(
    [
        102,
        151,
        245,
        119,
        91,
        149,
        80,
        222,
        49,
        53,
        203,
        172,
        165,
        151,
        24,
        28,
        157,
        228,
        33,
        16,
        155,
        235,
        43,
        88,
        180,
        208,
        176,
        75,
        147,
        173,
        242,
        41,
    ]
)
INTERNAL_NODE_KEY = bytes(
    [
        1,
        126,
        197,
        199,
        165,
        71,
        41,
        150,
        253,
        148,
        102,
        102,
        180,
        138,
        2,
        230,
        93,
        221,
        83,
        111,
        55,
        199,
        109,
        210,
        248,
        99,
        82,
        230,
        74,
        83,
        113,
        63,
    ]
)
XORB_IDENT = b"XETBLOB"
SHARD_HEADER_SIZE = 48
FILE_ENTRY_SIZE = 48
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA_EXT = 1 << 30
BOOKEND = b"\xff" * 32


def hash_to_hex(raw: bytes) -> str:
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def hex_to_hash(text: str) -> bytes:
    raw = bytes.fromhex(text)
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8))


def chunk_hash(data: bytes) -> bytes:
    return blake3.blake3(data, key=DATA_KEY).digest()


def _merge(entries: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{hash_to_hex(h)} : {n}\n" for h, n in entries)
    return blake3.blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(n for _, n in entries)


def _next_cut(entries: list[tuple[bytes, int]]) -> int:
    if len(entries) <= 2:
        return len(entries)
    end = min(9, len(entries))
    for i in range(2, end):
        if int.from_bytes(entries[i][0][24:32], "little") % 4 == 0:
            return i + 1
    return end


def aggregated_hash(entries: list[tuple[bytes, int]]) -> bytes:
    """xet-core's aggregated_node_hash: merge runs of 2..9 entries until one is left."""
    if not entries:
        return b"\0" * 32
    level = list(entries)
    while len(level) > 1:
        merged = []
        i = 0
        while i < len(level):
            cut = i + _next_cut(level[i:])
            merged.append(_merge(level[i:cut]))
            i = cut
        level = merged
    return level[0][0]


def _bg4_regroup(data: bytes) -> bytes:
    n = len(data)
    out = bytearray(n)
    pos = 0
    for i in range(4):
        size = len(range(i, n, 4))
        out[i::4] = data[pos : pos + size]
        pos += size
    return bytes(out)


def decode_xorb(body: bytes) -> list[bytes]:
    """The uncompressed chunks of a serialized xorb (footer ignored)."""
    chunks: list[bytes] = []
    pos = 0
    while pos < len(body):
        if body[pos : pos + len(XORB_IDENT)] == XORB_IDENT:
            break
        if pos + 8 > len(body):
            raise HubIntegrityError("xorb ends inside a chunk header")
        version, c0, c1, c2, scheme, u0, u1, u2 = struct.unpack_from("<8B", body, pos)
        if version != 0:
            raise HubIntegrityError(f"unknown xorb chunk version {version}")
        clen = c0 | c1 << 8 | c2 << 16
        ulen = u0 | u1 << 8 | u2 << 16
        payload = body[pos + 8 : pos + 8 + clen]
        if len(payload) != clen:
            raise HubIntegrityError("xorb ends inside a chunk")
        if scheme == 0:
            data = payload
        elif scheme == 1:
            data = lz4.frame.decompress(payload)
        elif scheme == 2:
            data = _bg4_regroup(lz4.frame.decompress(payload))
        else:
            raise HubIntegrityError(f"unknown xorb compression scheme {scheme}")
        if len(data) != ulen:
            raise HubIntegrityError("xorb chunk length does not match its header")
        chunks.append(data)
        pos += 8 + clen
    return chunks


def xorb_hash_of(chunks: list[bytes]) -> str:
    return hash_to_hex(aggregated_hash([(chunk_hash(c), len(c)) for c in chunks]))


@dataclass(frozen=True)
class Segment:
    xorb_hash: str
    unpacked_bytes: int
    chunk_start: int
    chunk_end: int  # exclusive


@dataclass(frozen=True)
class FileInfo:
    file_hash: str
    segments: list[Segment]
    sha256: str | None


def parse_shard_files(body: bytes) -> list[FileInfo]:
    """The file reconstructions listed in a shard's file-info section."""
    if len(body) < SHARD_HEADER_SIZE:
        raise HubIntegrityError("shard is shorter than its header")
    pos = SHARD_HEADER_SIZE
    files: list[FileInfo] = []
    while True:
        if pos + FILE_ENTRY_SIZE > len(body):
            raise HubIntegrityError("shard file-info section has no end marker")
        raw_hash = body[pos : pos + 32]
        flags, count = struct.unpack_from("<II", body, pos + 32)
        pos += FILE_ENTRY_SIZE
        if raw_hash == BOOKEND:
            return files
        segments = []
        for _ in range(count):
            xorb = body[pos : pos + 32]
            _xflags, unpacked, start, end = struct.unpack_from("<IIII", body, pos + 32)
            segments.append(Segment(hash_to_hex(xorb), unpacked, start, end))
            pos += FILE_ENTRY_SIZE
        if flags & FLAG_VERIFICATION:
            pos += FILE_ENTRY_SIZE * count
        sha256 = None
        if flags & FLAG_METADATA_EXT:
            sha256 = hash_to_hex(body[pos : pos + 32])  # stored as a DataHash, too
            pos += FILE_ENTRY_SIZE
        files.append(FileInfo(hash_to_hex(raw_hash), segments, sha256))
