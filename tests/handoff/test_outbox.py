"""One outbox concept (`leadscore.handoff.outbox`): the file outbox and the online store's
outbox behind one interface, and every store adapter offering the outbox part of its port."""

from __future__ import annotations

from leadscore.handoff.outbox import FileOutbox, Outbox, OutboxStore, StoreOutbox
from leadscore.stream.stores import open_store


def _members(protocol) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


def test_the_file_and_the_store_outbox_share_one_interface(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        for outbox in (FileOutbox(tmp_path / "outbox.jsonl"), StoreOutbox(store)):
            assert {m for m in _members(Outbox) if not hasattr(outbox, m)} == set()
        assert {m for m in _members(OutboxStore) | {"url"} if not hasattr(store, m)} == set()
    finally:
        store.close()


def test_a_missing_member_is_seen(tmp_path):
    class Half:
        path = "somewhere"

        def read(self):
            return []

    assert {m for m in _members(Outbox) if not hasattr(Half(), m)} == {
        "batches", "compact", "locked", "mark_delivered", "stage",
    }  # fmt: skip
