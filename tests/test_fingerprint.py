"""The content fingerprint sees values, rows and columns, never order, layout or encoding."""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from churn_mlops.fingerprint import (
    fingerprint_parquet,
    fingerprint_table,
    installed_packages,
    packages_fingerprint,
)


def _table(rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows, dtype="int64"),
            "snapshot_date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, rows), unit="D"),
            "region": rng.choice(["north", "south"], rows),
            "spend": rng.random(rows) * 100,
            "sessions": rng.integers(0, 50, rows),
        }
    )


def test_row_and_column_order_do_not_change_the_fingerprint():
    table = _table()
    shuffled = table.sample(frac=1.0, random_state=1)[list(reversed(table.columns))]
    assert fingerprint_table(shuffled) == fingerprint_table(table)


def test_layout_and_encoding_do_not_change_the_fingerprint(tmp_path):
    table = _table()
    expected = fingerprint_table(table)
    # One file with nanosecond timestamps vs a folder of part files with microseconds and a
    # dictionary-encoded string column (Spark's layout).
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    spark_like = arrow.set_column(
        1, "snapshot_date", arrow.column("snapshot_date").cast(pa.timestamp("us"))
    ).set_column(2, "region", arrow.column("region").dictionary_encode())
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, start in enumerate(range(0, len(table), 200)):
        pq.write_table(spark_like.slice(start, 200), folder / f"part-{i:05d}.parquet")
    assert fingerprint_table(pads.dataset(folder).to_table()) == expected
    assert fingerprint_parquet(folder) == expected  # streamed, batch by batch
    table.to_parquet(tmp_path / "one.parquet", row_group_size=64)
    assert fingerprint_parquet(tmp_path / "one.parquet") == expected
    duckdb_table = ibis.duckdb.connect().create_table("t", table)
    assert fingerprint_table(duckdb_table) == expected


def test_any_changed_value_row_or_column_changes_the_fingerprint():
    table = _table()
    expected = fingerprint_table(table)
    changed = table.copy()
    changed.loc[17, "spend"] = np.nextafter(changed.loc[17, "spend"], np.inf)  # last bit
    assert fingerprint_table(changed) != expected
    assert fingerprint_table(table.iloc[1:]) != expected
    assert fingerprint_table(pd.concat([table, table.iloc[[3]]])) != expected  # a duplicate
    assert fingerprint_table(table.rename(columns={"spend": "amount"})) != expected
    assert fingerprint_table(table.assign(sessions=table.sessions.astype(float))) != expected


def test_package_fingerprint_follows_the_installed_versions():
    packages = installed_packages()
    assert any(p.startswith("kedro==") for p in packages)
    assert packages == sorted(packages)
    bumped = [p + ".post1" if p.startswith("kedro==") else p for p in packages]
    assert packages_fingerprint(bumped) != packages_fingerprint(packages)
    assert packages_fingerprint(reversed(packages)) == packages_fingerprint(packages)
