"""``DynamicBatcher`` on a fake model (records every batch): grouping by key, the batch size and
wait bounds, oldest-first fairness, the bounded queue, cancelled jobs dropped, model errors
delivered to every caller of the batch, and close() finishing queued work."""
import threading
import time

import pytest

from rcnn_plugins.apis.serving.batcher import DynamicBatcher, QueueFull, ShuttingDown


class FakeModel:
    def __init__(self, delay: float = 0.0, fail_on=None):
        self.batches = []
        self.delay = delay
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items):
        self.gate.wait(10)
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f'model failed on {self.fail_on}')
        time.sleep(self.delay)
        return [item * 10 for item in items]


def test_batches_group_equal_keys_up_to_max_batch():
    model = FakeModel()
    model.gate.clear()  # hold the worker while the queue fills
    batcher = DynamicBatcher(model, max_batch=3, max_wait_s=0.05, max_queue=100)
    try:
        blocker = batcher.submit(-1, 'x')
        time.sleep(0.1)  # the worker took it and waits at the gate
        keys = ['a', 'b', 'a', 'a', 'a', 'b']
        jobs = [batcher.submit(i, key) for i, key in enumerate(keys)]
        model.gate.set()
        assert [job.future.result(10) for job in jobs] == [i * 10 for i in range(6)]
        assert blocker.future.result(10) == -10
        # Oldest first: 'a' (0, 2, 3), then 'b' (1, 5) whose oldest is next, then the 'a' left (4).
        assert model.batches[1:] == [[0, 2, 3], [1, 5], [4]]
        assert [job.batch_size for job in jobs] == [3, 2, 3, 3, 1, 2]
        assert all(job.queue_s >= 0 and job.run_s >= 0 for job in jobs)
    finally:
        batcher.close(10)


def test_a_lone_job_waits_at_most_max_wait():
    model = FakeModel()
    batcher = DynamicBatcher(model, max_batch=8, max_wait_s=0.2, max_queue=10)
    try:
        start = time.monotonic()
        job = batcher.submit(1, 'a')
        assert job.future.result(10) == 10
        waited = time.monotonic() - start
        assert 0.15 < waited < 2.0
        # max_batch 1: no waiting at all.
        single = DynamicBatcher(model, max_batch=1, max_wait_s=5.0, max_queue=10)
        start = time.monotonic()
        assert single.submit(2, 'a').future.result(10) == 20
        assert time.monotonic() - start < 2.0
        single.close(10)
    finally:
        batcher.close(10)


def test_bounded_queue_cancelled_jobs_errors_and_close():
    model = FakeModel(fail_on=7)
    model.gate.clear()
    batcher = DynamicBatcher(model, max_batch=2, max_wait_s=0.0, max_queue=3)
    first = batcher.submit(0, 'a')
    time.sleep(0.1)  # taken by the worker, which waits at the gate
    jobs = [batcher.submit(i, 'a') for i in (1, 2, 3)]
    with pytest.raises(QueueFull):
        batcher.submit(4, 'a')
    assert len(batcher) == 3
    assert jobs[0].future.cancel()  # the caller gave up: never run
    model.gate.set()
    assert first.future.result(10) == 0 and [j.future.result(10) for j in jobs[1:]] == [20, 30]
    assert all(1 not in batch for batch in model.batches)
    bad, good = batcher.submit(7, 'b'), batcher.submit(8, 'b')
    with pytest.raises(RuntimeError, match='model failed on 7'):
        bad.future.result(10)
    with pytest.raises(RuntimeError):  # shared the failed forward pass
        good.future.result(10)
    assert batcher.submit(9, 'c').future.result(10) == 90  # still working
    # close(): queued jobs finish, new ones are refused.
    model.delay = 0.05
    late = [batcher.submit(i, 'd') for i in (10, 11, 12)]
    batcher.close(10)
    assert [j.future.result(0) for j in late] == [100, 110, 120]
    with pytest.raises(ShuttingDown):
        batcher.submit(13, 'd')
