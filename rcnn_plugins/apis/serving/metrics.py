"""Server metrics in the Prometheus text exposition format (version 0.0.4), written by hand: a
few counters, two histograms and two gauges need no dependency.

Exposed at ``GET /metrics``:

- ``rcnn_serve_requests_total{endpoint, status}``: answered requests;
- ``rcnn_serve_errors_total{kind}``: refused / failed requests by kind (``upload_too_large``,
  ``bad_image``, ``queue_full``, ``timeout``, ...);
- ``rcnn_serve_request_duration_seconds``: ``/predict`` latency histogram (arrival to answer);
- ``rcnn_serve_batch_size``: histogram of images per forward pass;
- ``rcnn_serve_queue_length``: images waiting for the model now;
- ``rcnn_serve_resident_memory_bytes``: the process's resident memory (Linux; 0 elsewhere).
"""
import os
import threading
from collections import defaultdict
from typing import Callable, Dict, List, Sequence, Tuple

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class Histogram:
    """Cumulative-bucket histogram (``le`` upper bounds, ``+Inf`` last)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        i = next((k for k, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str) -> List[str]:
        out, total = [], 0
        for bound, n in zip(list(self.bounds) + ['+Inf'], self.counts):
            total += n
            out.append(f'{name}_bucket{{le="{_num(bound)}"}} {total}')
        out += [f'{name}_sum {self.sum!r}', f'{name}_count {self.count}']
        return out


def _num(value) -> str:
    return value if isinstance(value, str) else repr(float(value))


def _resident_bytes() -> int:
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, ValueError, IndexError):
        return 0


class Metrics:
    """Thread-safe collection; ``queue_length`` is read when rendering."""

    def __init__(self, queue_length: Callable[[], int] = lambda: 0) -> None:
        self._lock = threading.Lock()
        self.queue_length = queue_length
        self.requests: Dict[Tuple[str, int], int] = defaultdict(int)
        self.errors: Dict[str, int] = defaultdict(int)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_size = Histogram(BATCH_BUCKETS)

    def request(self, endpoint: str, status: int, seconds: float = None, error: str = None) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            if error is not None:
                self.errors[error] += 1
            if seconds is not None:
                self.latency.observe(seconds)

    def batch(self, size: int) -> None:
        with self._lock:
            self.batch_size.observe(size)

    def render(self) -> str:
        with self._lock:
            lines = ['# HELP rcnn_serve_requests_total Requests answered, by endpoint and HTTP status.',
                     '# TYPE rcnn_serve_requests_total counter']
            lines += [f'rcnn_serve_requests_total{{endpoint="{e}",status="{s}"}} {n}'
                      for (e, s), n in sorted(self.requests.items())]
            lines += ['# HELP rcnn_serve_errors_total Requests refused or failed, by kind.',
                      '# TYPE rcnn_serve_errors_total counter']
            lines += [f'rcnn_serve_errors_total{{kind="{k}"}} {n}' for k, n in sorted(self.errors.items())]
            lines += ['# HELP rcnn_serve_request_duration_seconds /predict latency, arrival to answer.',
                      '# TYPE rcnn_serve_request_duration_seconds histogram']
            lines += self.latency.lines('rcnn_serve_request_duration_seconds')
            lines += ['# HELP rcnn_serve_batch_size Images per forward pass.',
                      '# TYPE rcnn_serve_batch_size histogram']
            lines += self.batch_size.lines('rcnn_serve_batch_size')
        lines += ['# HELP rcnn_serve_queue_length Images waiting for the model.',
                  '# TYPE rcnn_serve_queue_length gauge', f'rcnn_serve_queue_length {self.queue_length()}',
                  '# HELP rcnn_serve_resident_memory_bytes Resident memory of the server process.',
                  '# TYPE rcnn_serve_resident_memory_bytes gauge',
                  f'rcnn_serve_resident_memory_bytes {_resident_bytes()}']
        return '\n'.join(lines) + '\n'


def parse_metrics(text: str) -> Dict[str, float]:
    """``name{labels}`` -> value of a Prometheus text page (for tests and the benchmark)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            values[name] = float(value)
    return values
