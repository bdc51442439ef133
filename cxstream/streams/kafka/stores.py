"""Where a table keeps its values: RocksDB (the default, CXSTREAM_STATE_STORE) or memory."""

from __future__ import annotations

from typing import Any

from cxstream.streams.settings import Settings


def state_store(settings: Settings, table: str) -> dict[str, Any]:
    """The store of a large table (customer states, tallies, erasure markers), as Table
    arguments. Faust 0.15.3 has no ``rocksdict://`` scheme: its ``rocksdb`` store with the
    rocksdict driver is the same thing; the URL names the table's files in the data
    directory (``rocksdb://`` alone is an empty URL, which Faust reads as no store given).
    The small tables stay in memory."""
    if settings.state_store == "memory":
        return {}
    # the block cache named here is Faust's own, one per database; the worker replaces it
    # with one cache of CXSTREAM_STATE_CACHE_BYTES for all of them (faust_compat fix 7)
    return {"store": f"rocksdb:{table}", "options": {
        "driver": "rocksdict", "block_cache_size": 8 * 2**20,
        "write_buffer_size": settings.state_write_buffer_bytes, "max_write_buffer_number": 2}}
