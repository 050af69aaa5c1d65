"""One timed step per model (inference or a training step), run interleaved after warm-up.

Runs are interleaved (A B, B A, A B, ...) so that drift on a shared machine hits both models
equally; medians are reported.
"""
import contextlib
import statistics
import time

import torch

from .inputs import ours_data, tv_data


def _sync(device):
    if str(device).startswith('cuda'):
        torch.cuda.synchronize()


def _autocast(device, amp):
    if not amp:
        return contextlib.nullcontext()
    if str(device).startswith('cuda'):
        return torch.autocast('cuda', dtype=torch.float16)
    return torch.autocast('cpu', dtype=torch.bfloat16)


def _sum_losses(losses):
    """Total loss as mmengine's parse_losses does: every entry whose key contains 'loss'."""
    total = 0.
    for k, v in losses.items():
        if 'loss' not in k:
            continue
        total = total + (sum(x.sum() for x in v) if isinstance(v, (list, tuple)) else v.sum())
    return total


class Stepper:
    """Holds a model, its optimizer and a prepared batch; ``infer()``/``train()`` do one timed step."""

    def __init__(self, name, model, batch, device='cpu', amp=False, lr=1e-4):
        self.name, self.model, self.batch, self.device, self.amp = name, model, batch, device, amp
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
        use_scaler = amp and str(device).startswith('cuda')
        self.scaler = torch.amp.GradScaler('cuda') if use_scaler else None

    # Untimed preparation: fresh containers, host tensors (moved to the device inside the step).
    def _prepare(self):
        return ours_data(self.batch) if self.name == 'ours' else tv_data(self.batch)

    def _step_ours(self, data, training):
        m, dev = self.model, self.device
        data = dict(inputs=[x.to(dev, non_blocking=True) for x in data['inputs']],
                    data_samples=[s.to(dev) for s in data['data_samples']])
        with _autocast(dev, self.amp):
            data = m.data_preprocessor(data, training)
            if training:
                return _sum_losses(m(**data, mode='loss'))
            return m(**data, mode='predict')

    def _step_tv(self, data, training):
        m, dev = self.model, self.device
        with _autocast(dev, self.amp):
            # torchvision's own input convention: float RGB in [0, 1]; it normalises and pads itself.
            images = [x.to(dev, non_blocking=True).float().div_(255.) for x in data['images']]
            if training:
                targets = [{k: v.to(dev) for k, v in t.items()} for t in data['targets']]
                return _sum_losses(m(images, targets))
            return m(images)

    def _step(self, data, training):
        return self._step_ours(data, training) if self.name == 'ours' else self._step_tv(data, training)

    def infer_fn(self):
        data = self._prepare()

        def run():
            self.model.eval()
            with torch.no_grad():
                out = self._step(data, training=False)
            _sync(self.device)
            return out
        return run

    def train_fn(self):
        data = self._prepare()

        def run():
            self.model.train()
            loss = self._step(data, training=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            _sync(self.device)
            return loss
        return run


def run_interleaved(steppers, kind, warmup, iters, label, log=print):
    """Alternate the models each round (A B, then B A, ...) so drift hits both equally."""
    times = {s.name: [] for s in steppers}
    for r in range(warmup + iters):
        order = steppers if r % 2 == 0 else steppers[::-1]
        for s in order:
            fn = s.infer_fn() if kind == 'infer' else s.train_fn()   # untimed: fresh inputs
            _sync(s.device)
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[s.name].append(dt)
            tag = 'warm-up' if r < warmup else f'iter {r - warmup + 1}/{iters}'
            log(f'  [{label}] {tag:>10} {s.name:<11} {dt:8.3f} s')
    return times


def _summary(times, batch):
    med = statistics.median(times)
    return dict(median_s=med, times_s=times, imgs_per_s=batch / med)


# --------------------------------------------------------------------------------------------


def flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU, for both models alike.

    After the first SGD step from random weights, tiny gradients and activations turn denormal and
    x86 arithmetic on them is many times slower: measured at 800x1333, batch 2, the second
    training step took 41 s (torchvision) and over 100 s (ours) instead of ~27 s. Flushing keeps
    both at their real speed; the numbers it changes are below 1.2e-38.
    """
    torch.set_flush_denormal(True)
