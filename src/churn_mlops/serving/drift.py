"""Population stability index (PSI) of live traffic against the reference profile.

Binning convention (shared with whoever writes the reference profile): a numeric feature with
cut points ``c_1 <= ... <= c_{k-1}`` (the ``bin_edges`` without their open-ended first and last
entries) puts a value ``x`` in bin ``searchsorted(cuts, x, side="right")``, i.e. bins are
``[c_i, c_{i+1})`` and the first and last bins are open-ended; missing values go to one extra
bucket whose reference share is ``null_share``. A categorical feature has one bucket per
reference category plus one for any other value.

The serving app keeps the last ``window`` rows it scored; the request path only appends rows to
a queue and the binning happens in bulk when Prometheus scrapes, so drift costs the request
path almost nothing.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from churn_mlops.serving.bundle import CategoricalProfile, NumericProfile, ReferenceProfile

PSI_EPSILON = 1e-4
"""Share given to an empty bucket so that the logarithm in PSI stays finite."""


def bin_numeric(values: np.ndarray, cut_points: Sequence[float]) -> np.ndarray:
    """Bin index of every value; NaN goes to the extra bucket ``len(cut_points) + 1``.

    Args:
        values: Float array of raw feature values.
        cut_points: Interior bin edges, sorted (first and last bins are open-ended).

    Returns:
        Integer bucket per value in ``0 .. len(cut_points) + 1``.
    """
    values = np.asarray(values, dtype=np.float64)
    idx = np.searchsorted(np.asarray(cut_points, dtype=np.float64), values, side="right")
    idx[np.isnan(values)] = len(cut_points) + 1
    return idx


def population_stability_index(
    expected: np.ndarray, actual: np.ndarray, *, epsilon: float = PSI_EPSILON
) -> float:
    """PSI = sum((a - e) * ln(a / e)) over buckets, empty buckets floored at ``epsilon``.

    Args:
        expected: Reference share per bucket (sums to about 1).
        actual: Live share per bucket (sums to 1).
        epsilon: Floor for empty buckets.
    """
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


class _Encoder:
    """Maps one feature's raw values to bucket numbers and holds the reference shares."""

    def __init__(self, name: str, profile: NumericProfile | CategoricalProfile) -> None:
        self.name = name
        if isinstance(profile, NumericProfile):
            self.numeric = True
            self.cuts = np.asarray(profile.bin_edges, dtype=np.float64)
            freqs = np.asarray(profile.frequencies, dtype=np.float64)
            total = freqs.sum()
            freqs = freqs / total if total > 0 else freqs
            self.expected = np.append(freqs * (1.0 - profile.null_share), profile.null_share)
        else:
            self.numeric = False
            categories = list(profile.frequencies)
            self.lookup = {c: i for i, c in enumerate(categories)}
            freqs = np.asarray([profile.frequencies[c] for c in categories], dtype=np.float64)
            total = freqs.sum()
            freqs = freqs / total if total > 0 else freqs
            self.expected = np.append(freqs, 0.0)  # last bucket: categories never seen
        self.n_buckets = len(self.expected)

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if self.numeric:
            values = np.array(
                [np.nan if (v := r.get(self.name)) is None else v for r in rows], dtype=np.float64
            )
            return bin_numeric(values, self.cuts)
        other = self.n_buckets - 1
        lookup = self.lookup
        return np.fromiter(
            (lookup.get(r.get(self.name), other) for r in rows), dtype=np.int64, count=len(rows)
        )


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
                actual = counts[i, : enc.n_buckets] / self._size
                result[enc.name] = population_stability_index(enc.expected, actual)
            return result
