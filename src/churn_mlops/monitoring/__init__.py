"""Drift statistics, reference profiles and monitoring helpers shared by pipelines and serving."""

from __future__ import annotations
