"""Tests of the monitoring pipeline: nodes, wiring and simulator scenarios."""
