"""Native histograms into a real Prometheus, as OpenTelemetry SDKs' exponential histograms arrive
(through the Collector's remote write): a Prometheus remote-write 1.0 request (protobuf, snappy
block format) carrying native histogram samples, sent to `/api/v1/write`.

Only the few protobuf fields of prompb.WriteRequest that this needs are encoded; the snappy block
is written as one literal (valid snappy, no compression), which every decoder accepts.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _double(field: int, value: float) -> bytes:
    return _tag(field, 1) + struct.pack("<d", value)


def _uint(field: int, value: int) -> bytes:
    return _tag(field, 0) + _varint(value)


def _sint(field: int, value: int) -> bytes:
    return _tag(field, 0) + _varint(_zigzag(value))


@dataclass(frozen=True)
class Sample:
    """One cumulative native histogram sample, schema 0: bucket i holds (2^(i-1), 2^i]."""

    timestamp_ms: int
    # bucket index -> count in that bucket (not cumulative), indexes consecutive from the first.
    buckets: dict[int, int]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.buckets.values())


def _histogram(sample: Sample) -> bytes:
    indexes = sorted(sample.buckets)
    first, last = indexes[0], indexes[-1]
    counts = [sample.buckets.get(i, 0) for i in range(first, last + 1)]
    deltas, previous = [], 0
    for count in counts:
        deltas.append(count - previous)
        previous = count
    span = _sint(1, first) + _uint(2, len(counts))
    body = _uint(1, sample.count) + _double(3, sample.sum) + _sint(4, 0) + _double(5, 0.0) + _uint(6, 0)
    body += _bytes(11, span)
    body += _bytes(12, b"".join(_varint(_zigzag(delta)) for delta in deltas))
    body += _tag(15, 0) + _varint(sample.timestamp_ms)
    return body


def write_request(series: Iterable[tuple[dict[str, str], list[Sample]]]) -> bytes:
    """prompb.WriteRequest: timeseries (1) of labels (1) and histograms (4)."""
    request = b""
    for labels, samples in series:
        body = b"".join(
            _bytes(1, _bytes(1, name.encode()) + _bytes(2, value.encode())) for name, value in sorted(labels.items())
        )
        body += b"".join(_bytes(4, _histogram(sample)) for sample in samples)
        request += _bytes(1, body)
    return request


def snappy_block(data: bytes) -> bytes:
    """`data` in snappy's block format as one literal (uncompressed length, then the literal)."""
    size = len(data) - 1
    if size < 60:
        tag = bytes([size << 2])
    else:
        width = max(1, math.ceil(size.bit_length() / 8))
        tag = bytes([(59 + width) << 2]) + size.to_bytes(width, "little")
    return _varint(len(data)) + tag + data


def push(url: str, series: Iterable[tuple[dict[str, str], list[Sample]]]) -> None:
    """Send the series to a Prometheus remote-write receiver at `url` (…/api/v1/write)."""
    reply = requests.post(
        url,
        data=snappy_block(write_request(series)),
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
        timeout=10,
    )
    assert reply.status_code in (200, 204), f"{reply.status_code}: {reply.text}"


def latency_series(
    labels: dict[str, str], *, end_ms: int, minutes: int = 10, step_s: int = 15, per_step: int = 20
) -> tuple[dict[str, str], list[Sample]]:
    """A request-duration histogram growing by `per_step` requests every `step_s`: 50% within
    0.125 s, 80% within 0.25 s, 95% within 0.5 s, the rest within 1 s."""
    shares = {-3: 0.5, -2: 0.3, -1: 0.15, 0: 0.05}
    samples = []
    steps = minutes * 60 // step_s
    for step in range(steps + 1):
        total = per_step * (step + 1)
        buckets = {index: round(total * share) for index, share in shares.items()}
        samples.append(Sample(end_ms - (steps - step) * step_s * 1000, buckets, sum=0.2 * total))
    return labels, samples


def _fraction_below(bound: float, mean: float) -> float:
    return 1.0 - math.exp(-bound / mean)


def catalog_series(
    catalog: list[Any], *, end_s: int, seconds: int, step_s: int = 30
) -> list[tuple[dict[str, str], list[Sample]]]:
    """Every histogram of the synthetic data set (tests/support/dashboard_series.py) in native form: one
    series per label set under the histogram's base name, `seconds` of samples up to `end_s`."""
    steps = seconds // step_s
    series = []
    for metric in catalog:
        if metric.type != "histogram":
            continue
        for index, labels in enumerate(metric.label_sets()):
            mean = metric.mean * (1 + 0.3 * index)
            per_step = max(10, round(metric.scale * step_s))
            # Observations per step in each bucket (index i holds (2^(i-1), 2^i]), fixed: counts only grow.
            increments: dict[int, int] = {}
            for bucket in range(-9, 8):
                upper = 2.0**bucket if bucket < 7 else math.inf
                lower = 2.0 ** (bucket - 1)
                share = (1.0 if upper == math.inf else _fraction_below(upper, mean)) - _fraction_below(lower, mean)
                increments[bucket] = max(0, round(per_step * share))
            samples = [
                Sample(
                    (end_s - (steps - step) * step_s) * 1000,
                    {bucket: count * (step + 1) for bucket, count in increments.items()},
                    sum=mean * per_step * (step + 1),
                )
                for step in range(steps + 1)
            ]
            series.append(({"__name__": metric.name, **labels}, samples))
    return series
