"""Statement files in PostgreSQL, streamed both ways: a file of any size costs a chunk of memory.

`recon_files.content` is stored uncompressed (migration 0013), so reading it a chunk at a time with
substring() fetches only the TOAST chunks asked for. Writing goes through binary COPY, whose field
length is known up front: the bytes follow from a local spool a chunk at a time.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import date
from typing import Any, BinaryIO

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHUNK = 1 << 22
PG_EPOCH = date(2000, 1, 1)
_COPY = "COPY recon_files (sha256, source, bill_date, size_bytes, content) FROM STDIN (FORMAT binary)"


def sha256_of(src: BinaryIO) -> tuple[str, int]:
    """The sha256 and size of a spool, read from its start a chunk at a time."""
    src.seek(0)
    digest, size = hashlib.sha256(), 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


async def keep_file(session: AsyncSession, source: str, day: date, src: BinaryIO) -> str:
    """Keep a statement's bytes once (by sha256), in the session's transaction; returns the sha256."""
    sha, size = sha256_of(src)
    # Two keepers of the same new file queue here instead of one of them failing on the primary key.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:sha))"), {"sha": sha})
    if (await session.execute(text("SELECT 1 FROM recon_files WHERE sha256 = :sha"), {"sha": sha})).first():
        return sha
    conn = await session.connection()
    pg: Any = (await conn.get_raw_connection()).driver_connection
    fields = [_field(sha.encode()), _field(source.encode()), _field(struct.pack("!i", (day - PG_EPOCH).days))]
    head = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0) + struct.pack("!h", 5) + b"".join(fields)
    async with pg.cursor() as cur, cur.copy(_COPY) as copy:
        await copy.write(head + _field(struct.pack("!q", size)) + struct.pack("!i", size))
        src.seek(0)
        while chunk := src.read(CHUNK):
            await copy.write(chunk)
        await copy.write(struct.pack("!h", -1))
    return sha


def _field(value: bytes) -> bytes:
    return struct.pack("!i", len(value)) + value


async def read_file(session: AsyncSession, sha256: str, out: BinaryIO) -> int:
    """Copy a kept statement file's bytes into `out` a chunk at a time; returns its size."""
    size = (
        await session.execute(text("SELECT size_bytes FROM recon_files WHERE sha256 = :s"), {"s": sha256})
    ).scalar_one()
    at = 0
    while at < size:
        part = (
            await session.execute(
                text("SELECT substring(content FROM :at FOR :n) FROM recon_files WHERE sha256 = :s"),
                {"at": at + 1, "n": CHUNK, "s": sha256},
            )
        ).scalar_one()
        if not part:
            raise RuntimeError(f"statement file {sha256} ends at {at} bytes, {size} announced")
        out.write(part)
        at += len(part)
    return int(size)
