"""Dynamic batching: requests arriving within a short wait share a forward pass, grouped by padded
shape (:mod:`rcnn_plugins.apis.batching` explains why only equal padded shapes may share one: then
every image's detections equal its single-image ones).

One worker thread owns the model. It takes the oldest waiting job, waits until ``max_batch``
jobs of its padded shape are queued or until the oldest has waited ``max_wait_s``, and runs up
to ``max_batch`` of them (oldest first; other shapes keep their place, so none starves). The
queue is bounded: :meth:`DynamicBatcher.submit` raises :class:`QueueFull` beyond ``max_queue``.
A job whose caller gave up (timeout, disconnect: its future was cancelled) is dropped unrun.
"""
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Hashable, List, Optional


class QueueFull(Exception):
    """The batcher already holds ``max_queue`` jobs."""


class ShuttingDown(Exception):
    """The batcher no longer takes jobs."""


@dataclass
class Job:
    item: Any                     # what ``run`` takes (a pipeline output)
    key: Hashable                 # jobs with equal keys may share a batch (the padded shape)
    future: Future = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)
    batch_size: int = 0           # set when run: how many jobs shared its forward pass
    queue_s: float = 0.0          # time from submit to the start of its forward pass
    run_s: float = 0.0            # its forward pass's duration


class DynamicBatcher:
    """Args:
        run: list of items of one key -> one result each, in order (called in the worker thread).
        max_batch: most jobs per ``run`` call (1 turns batching off).
        max_wait_s: longest the oldest job waits for others before its batch runs anyway.
        max_queue: most jobs waiting; more raise :class:`QueueFull`.
        on_batch: called with each batch's size after it ran (metrics).
    """

    def __init__(self, run: Callable[[List[Any]], List[Any]], max_batch: int = 8, max_wait_s: float = 0.01,
                 max_queue: int = 64, on_batch: Optional[Callable[[int], None]] = None) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError(f'max_batch ({max_batch}) and max_queue ({max_queue}) must be >= 1, '
                             f'max_wait_s ({max_wait_s}) >= 0')
        self.run, self.max_batch, self.max_wait_s, self.max_queue = run, max_batch, max_wait_s, max_queue
        self.on_batch = on_batch
        self._queue: Deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name='rcnn-serve-batcher', daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, item: Any, key: Hashable) -> Job:
        """Queue one item; its result arrives in ``job.future``."""
        job = Job(item, key)
        with self._cond:
            if self._closed:
                raise ShuttingDown()
            if len(self._queue) >= self.max_queue:
                raise QueueFull()
            self._queue.append(job)
            self._cond.notify()
        return job

    def close(self, timeout: Optional[float] = None) -> None:
        """Refuse new jobs, finish the queued ones, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ worker
    def _next_batch(self) -> Optional[List[Job]]:
        with self._cond:
            while True:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return None  # closed and drained
                first = self._queue[0]
                same = [job for job in self._queue if job.key == first.key]
                left = first.enqueued + self.max_wait_s - time.monotonic()
                if len(same) >= self.max_batch or left <= 0 or self._closed:
                    batch = same[:self.max_batch]
                    taken = set(map(id, batch))
                    self._queue = deque(job for job in self._queue if id(job) not in taken)
                    return batch
                self._cond.wait(left)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            # A cancelled future (the caller gave up) is dropped; the others are marked running.
            batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            start = time.monotonic()
            try:
                results = self.run([job.item for job in batch])
            except Exception as err:  # the model failed: every caller of this batch gets the error
                for job in batch:
                    job.future.set_exception(err)
                continue
            finally:
                for job in batch:
                    job.item = None  # the input tensor is no longer needed
            run_s = time.monotonic() - start
            if self.on_batch is not None:
                self.on_batch(len(batch))
            for job, result in zip(batch, results):
                job.batch_size, job.queue_s, job.run_s = len(batch), start - job.enqueued, run_s
                job.future.set_result(result)
