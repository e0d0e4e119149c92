"""Streaming ingestion: Kafka topics of raw-table rows → durable Parquet in the raw landing area.

``contract`` is the event format, ``producer`` publishes the simulator's tables, ``consumer``
lands them exactly once (docs/streaming.md); ``python -m churn_mlops.ingestion`` runs the
consumer and ``kedro stream publish|consume`` both sides.
"""
