"""API keys (store.api_keys): shown once, kept as a hash, revoked for good, checked by the hash."""

from __future__ import annotations

import pytest

from store.api_keys import PREFIX, ApiKeys
from store.database import open_db, rows
from store.errors import DomainsmithError


@pytest.fixture
def keys(tmp_path):
    db = open_db(tmp_path / "domainsmith.db")
    yield ApiKeys(db)
    db.close()


def test_a_created_key_is_valid_listed_and_stored_only_as_its_hash(keys):
    record, key = keys.create("  notebook  ")
    assert key.startswith(PREFIX) and len(key) == len(PREFIX) + 43
    assert record.name == "notebook" and record.prefix == key[:10] and record.revoked_at is None
    assert keys.valid(key) and not keys.valid(key + "x") and not keys.valid("sk-" + key[3:])
    assert keys.list() == [record]
    stored = [tuple(r) for r in rows(keys.db, "SELECT * FROM api_keys")]
    assert key not in repr(stored)


def test_a_revoked_key_stops_working_and_keeps_its_first_revocation_time(keys):
    record, key = keys.create("script")
    _, other = keys.create("editor")
    revoked = keys.revoke(record.id)
    assert revoked.id == record.id and revoked.revoked_at
    assert not keys.valid(key) and keys.valid(other)
    assert keys.revoke(record.id).revoked_at == revoked.revoked_at
    assert ApiKeys(keys.db).list()[0].revoked_at == revoked.revoked_at  # applying the migration again is a no-op


@pytest.mark.parametrize("bad", ["", "   "])
def test_a_key_needs_a_name(keys, bad):
    with pytest.raises(DomainsmithError, match="name"):
        keys.create(bad)


def test_revoking_an_unknown_id_names_it(keys):
    with pytest.raises(DomainsmithError, match="'nope'"):
        keys.revoke("nope")
