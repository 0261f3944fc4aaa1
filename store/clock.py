"""Timestamps as stored everywhere (SQLite rows, run manifests): ISO 8601 in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_timestamp(timespec: str = "seconds") -> str:
    """Now in UTC, ``2026-12-01T04:50:52+00:00`` (``timespec`` as in ``datetime.isoformat``)."""
    return datetime.now(UTC).isoformat(timespec=timespec)
