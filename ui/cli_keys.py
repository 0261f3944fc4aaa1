"""``python app.py keys create|list|revoke``: the API keys ``/v1`` wants when a password is set."""

from __future__ import annotations

import argparse
import json

from store.api_keys import ApiKeys
from ui.services import Services
from ui.text_table import format_table


def register(sub) -> None:
    keys = sub.add_parser("keys", help="API keys for /v1 (required there when a password is set)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    create = keys_sub.add_parser("create", help="create a key; it is printed once, only its hash is kept")
    create.add_argument("name", metavar="NAME", help="who or what uses the key")
    create.add_argument("--json", action="store_true")
    create.set_defaults(handler=cmd_keys_create)
    ls = keys_sub.add_parser("list", help="list the keys (id, name, first characters, created, revoked)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id (see `keys list`)")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.set_defaults(handler=cmd_keys_revoke)


def cmd_keys_create(services: Services, args: argparse.Namespace) -> int:
    record, key = ApiKeys(services.db).create(args.name)
    if args.json:
        print(json.dumps({"id": record.id, "name": record.name, "key": key}))
    else:
        print(f"created key {record.id} ({record.name}); it is shown only now:\n{key}")
    return 0


def cmd_keys_list(services: Services, args: argparse.Namespace) -> int:
    keys = ApiKeys(services.db).list()
    if args.json:
        print(json.dumps({"keys": [k.__dict__ for k in keys]}, indent=2))
    elif not keys:
        print("no API keys yet: create one with `python app.py keys create NAME`")
    else:
        rows = [("ID", "NAME", "KEY", "CREATED", "REVOKED")]
        rows += [(k.id, k.name, k.prefix + "...", k.created_at, k.revoked_at or "-") for k in keys]
        print(format_table(rows))
    return 0


def cmd_keys_revoke(services: Services, args: argparse.Namespace) -> int:
    key = ApiKeys(services.db).revoke(args.key_id)
    print(f"revoked key {key.id} ({key.name}) at {key.revoked_at}")
    return 0
