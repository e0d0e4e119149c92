"""Orchestration: continuous training (refresh, monitor, retrain, gate, export) over Kedro sessions."""
