"""CSV export of a list, streamed: constant memory however long the list, and never stored
anywhere (the file goes straight to the caller who may read the list)."""

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from .repository import EXPORT_COLUMNS, export_statement

CHUNK_ROWS = 1000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# creator handles, names and notes come from outside, so such cells get a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


async def csv_chunks(engine: AsyncEngine, list_id: uuid.UUID) -> AsyncIterator[str]:
    """The header, then rows in chunks of ``CHUNK_ROWS`` read through a server-side cursor."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield buffer.getvalue()
    async with engine.connect() as conn:
        # stream() uses a server-side cursor; yield_per bounds what is fetched at a time.
        result = await conn.stream(
            export_statement(list_id).execution_options(yield_per=CHUNK_ROWS)
        )
        async for partition in result.partitions(CHUNK_ROWS):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows([_cell(v) for v in row] for row in partition)
            yield buffer.getvalue()
