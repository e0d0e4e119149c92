"""``python -m churn_mlops.ingestion``: run the consumer (options of ``kedro stream consume``)."""

from __future__ import annotations

from churn_mlops.ingestion.cli import consume

if __name__ == "__main__":
    consume(prog_name="python -m churn_mlops.ingestion")
