"""The keyed tables' RocksDB store: on disk, and always rebuilt from the changelog."""

from __future__ import annotations

from pathlib import Path

from faust.types import TP

from contracts.lifecycle import LedgerEntry
from streams.app import create_app
from streams.settings import Settings
from tables.rocksdb import Store
from tables.typed import declare_table, reset_local_tables


def app_in(tmp_path: Path):  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path / "data"))
    app.finalize()
    return app


def test_a_rocksdb_table_keeps_its_partitions_in_files_under_the_data_dir(
    tmp_path: Path,
) -> None:
    app = app_in(tmp_path)
    table = declare_table(app, "ledger", LedgerEntry, 4, store="rocksdb")
    store = table._table.data
    assert isinstance(store, Store)
    store._db_for_partition(2).put(b"scope", b"{}")
    assert store.partition_path(2).is_dir()
    assert (tmp_path / "data") in store.partition_path(2).parents


def test_the_store_remembers_no_changelog_offset(tmp_path: Path) -> None:
    app = app_in(tmp_path)
    store = declare_table(app, "registry", LedgerEntry, 4, store="rocksdb")
    tp = TP(topic="contractflow-registry-changelog", partition=1)
    store._table.data.set_persisted_offset(tp, 41)
    # Faust's own store answers 41 and then reads the changelog past it only.
    assert store._table.data.persisted_offset(tp) is None


def test_a_memory_table_stays_in_memory(tmp_path: Path) -> None:
    app = app_in(tmp_path)
    table = declare_table(app, "windows", LedgerEntry, 4)
    assert not isinstance(table._table.data, Store)


def test_a_worker_start_removes_the_table_files_a_previous_run_left(
    tmp_path: Path,
) -> None:
    app = app_in(tmp_path)
    store = declare_table(app, "ledger", LedgerEntry, 4, store="rocksdb")._table.data
    store._db_for_partition(0).put(b"scope", b"{}")
    store._dbs[0].close()
    assert any(Path(app.conf.tabledir).iterdir())
    reset_local_tables(app)
    assert not Path(app.conf.tabledir).exists()
