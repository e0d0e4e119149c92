"""Benchmark: how much a non-linear model gains over a linear one on the simulated data.

Simulates the configured default data, builds the features of docs/data_model.md at every
month start from the fourth month on (30/90-day windows, strictly before the snapshot, label =
churn within 30 days) in plain pandas, splits by time, and prints ROC-AUC and PR-AUC on the
test months for a logistic regression, an XGBoost classifier and the simulator's own
ground-truth hazard (the ceiling). It is a check of the simulator's signal, independent of the
``feature_engineering`` and ``training`` pipelines.

Usage::

    python benchmarks/simulation_signal.py
    python benchmarks/simulation_signal.py --seed 7 --n-jobs 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
import yaml
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churn_mlops.pipelines.simulation import merge_parameters, simulate
from churn_mlops.release import demo

PARAMETERS = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_simulation.yml"
NUMERIC = list(demo.NUMERIC)  # the feature contract (docs/data_model.md)
CATEGORICAL = list(demo.CATEGORICAL)
WINDOWS = {"_30d": pd.Timedelta(days=30), "_90d": pd.Timedelta(days=90)}
COUNTS = {
    "sessions": ("session", ("_30d", "_90d")),
    "support_tickets": ("support_ticket", ("_30d", "_90d")),
    "late_payments": ("late_payment", ("_90d",)),
    "payments": ("payment", ("_90d",)),
    "online_purchases": ("online_purchase", ("_90d",)),
}


def _features(tables: dict[str, pd.DataFrame], recency_cap_days: int) -> pd.DataFrame:
    customers = tables["customers"].merge(tables["churn_records"], how="left")
    events = tables["events"]
    sessions = events[events["event_type"] == "session"]
    start = events["event_time"].min().normalize().replace(day=1)
    end = events["event_time"].max()
    frames = []
    for snapshot in pd.date_range(start + pd.DateOffset(months=3), end, freq="MS"):
        rows = customers[
            (customers["signup_date"] < snapshot)
            & (customers["churn_date"].isna() | (customers["churn_date"] >= snapshot))
        ].set_index("customer_id")
        rows = rows.assign(
            snapshot_date=snapshot,
            churned=(rows["churn_date"] < snapshot + pd.Timedelta(days=30)).astype(int),
            tenure_days=(snapshot - rows["signup_date"]).dt.days,
            paperless_billing=rows["paperless_billing"].astype(int),
        )
        for suffix, length in WINDOWS.items():
            window = events[
                (events["event_time"] >= snapshot - length) & (events["event_time"] < snapshot)
            ]
            by_type = window.groupby(["customer_id", "event_type"]).size().unstack(fill_value=0)
            for name, (event_type, suffixes) in COUNTS.items():
                if suffix in suffixes:
                    counts = by_type.get(event_type, pd.Series(dtype=float))
                    rows[name + suffix] = counts.reindex(rows.index).fillna(0)
            if suffix == "_30d":
                minutes = window.groupby("customer_id")["duration_minutes"].sum()
                rows["session_minutes_30d"] = minutes.reindex(rows.index).fillna(0)
            else:
                bought = window[window["event_type"] == "online_purchase"]
                spend = bought.groupby("customer_id")["amount"].sum()
                rows["online_spend_90d"] = spend.reindex(rows.index).fillna(0)
        last = (
            sessions[sessions["event_time"] < snapshot].groupby("customer_id")["event_time"].max()
        )
        rows["days_since_last_session"] = (
            (snapshot - last.reindex(rows.index)).dt.days.fillna(recency_cap_days)
        ).clip(upper=recency_cap_days)
        monthly = rows["sessions_90d"] / 3
        rows["usage_trend"] = np.where(
            monthly > 0, rows["sessions_30d"] / monthly.where(monthly > 0), 0
        )
        frames.append(rows.reset_index())
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="override simulation.seed")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--test-months", type=int, default=6)
    parser.add_argument("--recency-cap-days", type=int, default=365)
    args = parser.parse_args()

    with PARAMETERS.open(encoding="utf-8") as handle:
        parameters = yaml.safe_load(handle)["simulation"]
    if args.seed is not None:
        parameters = merge_parameters(parameters, {"seed": args.seed})
    started = time.perf_counter()
    tables = simulate(parameters)
    table = _features(tables, args.recency_cap_days)
    snapshots = np.sort(table["snapshot_date"].unique())
    test_start = snapshots[-args.test_months]
    # One month gap: a training label (30 days ahead) must not overlap the test period.
    train = table[table["snapshot_date"] < snapshots[-args.test_months - 1]]
    test = table[table["snapshot_date"] >= test_start]
    print(
        f"{len(tables['events']):,} events; train {len(train):,} rows "
        f"(churn {train['churned'].mean():.3f}), test {len(test):,} rows "
        f"(churn {test['churned'].mean():.3f}) from {pd.Timestamp(test_start).date()}"
    )

    columns = NUMERIC + CATEGORICAL
    logistic = make_pipeline(
        ColumnTransformer(
            [
                ("numeric", StandardScaler(), NUMERIC),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ]
        ),
        LogisticRegression(max_iter=2000),
    ).fit(train[columns], train["churned"])

    def encoded(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[columns].astype({name: "category" for name in CATEGORICAL})

    booster = xgb.XGBClassifier(
        n_estimators=400,
        learning_rate=0.05,
        max_depth=4,
        subsample=0.8,
        colsample_bytree=0.8,
        enable_categorical=True,
        tree_method="hist",
        n_jobs=args.n_jobs,
        random_state=0,
    ).fit(encoded(train), train["churned"])

    truth = test.merge(
        tables["simulation_ground_truth"][["customer_id", "snapshot_date", "hazard"]], how="left"
    )
    scores = {
        "logistic regression": logistic.predict_proba(test[columns])[:, 1],
        "xgboost": booster.predict_proba(encoded(test))[:, 1],
        "true hazard (ceiling)": truth["hazard"].fillna(0).to_numpy(),
    }
    print(f"{'model':<22} {'ROC-AUC':>8} {'PR-AUC':>8}")
    for name, score in scores.items():
        roc = roc_auc_score(test["churned"], score)
        pr = average_precision_score(test["churned"], score)
        print(f"{name:<22} {roc:>8.4f} {pr:>8.4f}")
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
