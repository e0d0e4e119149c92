"""Population stability index (PSI) of live traffic against the reference profile.

The statistic and the binning are the monitoring pipeline's
(:mod:`churn_mlops.contracts.statistics`), so a dashboard and a drift report agree on the same
window:

- numeric: the profile's inner cut points ``c_1 < ... < c_{k-1}`` put a value ``x`` in bin
  ``searchsorted(cuts, x, side="right")`` (bins ``[c_i, c_{i+1})``, first and last bins
  open-ended); missing values are left out (the profile's shares are over non-null rows);
- categorical: one bucket per reference category and one per category never seen in
  training (up to :data:`MAX_UNSEEN_CATEGORIES`, then one shared overflow bucket), nulls left
  out;
- ``PSI = sum((p - q) * ln(p / q))`` with empty buckets given ``PSI_EPSILON``.

The serving app keeps the last ``window`` rows it scored. The request path only appends the
rows to a queue; binning happens in bulk when Prometheus scrapes, so drift costs the request
path almost nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from churn_mlops.contracts.profile import CategoricalReference, NumericReference, ReferenceProfile
from churn_mlops.contracts.statistics import bin_numeric, population_stability_index

MAX_UNSEEN_CATEGORIES = 32
"""Categories outside the profile that get a bucket of their own; the rest share one."""


class _Encoder:
    """Maps one feature's raw values to bucket numbers; the last bucket holds missing values."""

    def __init__(self, name: str, profile: NumericReference | CategoricalReference) -> None:
        self.name = name
        if isinstance(profile, NumericReference):
            self.numeric = True
            self.cuts = np.asarray(profile.inner_edges, dtype=np.float64)
            self.expected = np.asarray(profile.frequencies, dtype=np.float64)
        else:
            self.numeric = False
            categories = list(profile.frequencies)
            self.lookup: dict[Any, int] = {c: i for i, c in enumerate(categories)}
            self.known = len(categories)
            self.expected = np.concatenate(
                [
                    np.asarray([profile.frequencies[c] for c in categories], dtype=np.float64),
                    np.zeros(MAX_UNSEEN_CATEGORIES + 1),  # unseen categories, then overflow
                ]
            )
        self.null_bucket = len(self.expected)
        self.n_buckets = self.null_bucket + 1

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        name = self.name
        if self.numeric:
            values = np.array(
                [np.nan if (v := r.get(name)) is None else v for r in rows], dtype=np.float64
            )
            return bin_numeric(values, self.cuts)
        codes = np.empty(len(rows), dtype=np.int64)
        lookup = self.lookup
        for i, row in enumerate(rows):
            value = row.get(name)
            code = lookup.get(value)
            if code is None:
                if value is None:
                    code = self.null_bucket
                elif len(lookup) < self.known + MAX_UNSEEN_CATEGORIES:
                    code = lookup[value] = len(lookup)
                else:
                    code = self.known + MAX_UNSEEN_CATEGORIES  # overflow bucket
            codes[i] = code
        return codes


class SlidingWindowDrift:
    """PSI of the last ``window`` scored rows against a reference profile, per feature.

    ``observe`` is O(rows) list appends; ``psi`` bins the rows seen since the last call and
    updates bucket counts of a fixed-size ring buffer. Thread-safe.
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        feature_names: Iterable[str],
        *,
        window: int,
        min_samples: int,
    ) -> None:
        self.window = int(window)
        self.min_samples = int(min_samples)
        self._encoders = [
            _Encoder(name, profile.features[name])
            for name in feature_names
            if name in profile.features
        ]
        n_features = len(self._encoders)
        self._width = max((e.n_buckets for e in self._encoders), default=1)
        self._ring = np.zeros((self.window, max(n_features, 1)), dtype=np.int64)
        self._counts = np.zeros(max(n_features, 1) * self._width, dtype=np.int64)
        self._offsets = np.arange(max(n_features, 1), dtype=np.int64) * self._width
        self._head = 0
        self._size = 0
        self._pending: deque[Mapping[str, Any]] = deque(maxlen=self.window)
        self._lock = threading.Lock()

    @property
    def features(self) -> list[str]:
        """Features that have a reference distribution (the only ones PSI is computed for)."""
        return [e.name for e in self._encoders]

    def observe(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Queue scored rows (feature name → raw value) for the next PSI computation."""
        self._pending.extend(rows)

    def _drain(self) -> None:
        rows = []
        pending = self._pending
        while pending:
            try:
                rows.append(pending.popleft())
            except IndexError:  # emptied by a concurrent reader between the test and the pop
                break
        if not rows or not self._encoders:
            return
        codes = np.column_stack([e.encode(rows) for e in self._encoders])[-self.window :]
        m = codes.shape[0]
        positions = (self._head + np.arange(m)) % self.window
        evicted = max(0, self._size + m - self.window)
        if evicted:
            # Until the ring is full, head == size: the new rows first fill the empty slots and
            # only the last ``evicted`` positions hold (the oldest) rows that drop out.
            old = self._ring[positions[-evicted:]]
            self._counts -= np.bincount((old + self._offsets).ravel(), minlength=self._counts.size)
        self._ring[positions] = codes
        self._counts += np.bincount((codes + self._offsets).ravel(), minlength=self._counts.size)
        self._head = int((self._head + m) % self.window)
        self._size = min(self.window, self._size + m)

    @property
    def size(self) -> int:
        """Rows currently in the window (after binning what is queued)."""
        with self._lock:
            self._drain()
            return self._size

    def psi(self) -> dict[str, float]:
        """PSI per feature over the window; empty until ``min_samples`` rows were seen."""
        with self._lock:
            self._drain()
            if self._size < max(self.min_samples, 1):
                return {}
            counts = self._counts.reshape(-1, self._width)
            result = {}
            for i, enc in enumerate(self._encoders):
                present = counts[i, : enc.null_bucket]
                total = int(present.sum())
                if total:
                    result[enc.name] = population_stability_index(enc.expected, present / total)
            return result
