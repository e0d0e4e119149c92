"""Orchestration: continuous training (refresh, monitor, retrain, gate, export) in sessions."""
