"""Tests of the monitoring library (drift statistics and reference profiles)."""
