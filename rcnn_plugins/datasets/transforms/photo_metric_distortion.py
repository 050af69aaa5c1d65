"""``PhotoMetricDistortion``: MMDetection's colour jitter (SSD), boxes untouched.

Each step applies with probability 0.5, in order: brightness (``+ U(-delta, delta)``), contrast
(``* U(range)``, either here or after the HSV steps, chosen at random), BGR -> HSV, saturation
(``S * U(range)``, clipped to [0, 1] when increased), hue (``H + U(-delta, delta)`` wrapped to
[0, 360)), HSV -> BGR, then a random channel permutation. The image becomes float32 and is not
clipped to [0, 255] (as MMDetection; the data preprocessor normalises it).
"""
from typing import Sequence

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from ...registry import TRANSFORMS


@TRANSFORMS.register_module()
class PhotoMetricDistortion(BaseTransform):
    """Args: ``brightness_delta`` (grey levels), ``contrast_range``, ``saturation_range``,
    ``hue_delta`` (degrees)."""

    def __init__(self, brightness_delta: int = 32, contrast_range: Sequence[float] = (0.5, 1.5),
                 saturation_range: Sequence[float] = (0.5, 1.5), hue_delta: int = 18) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    @cache_randomness
    def _random_flags(self):
        """Draws in MMDetection's order, so a seeded numpy RNG gives the same jitter."""
        rand = np.random
        mode, brightness, contrast, saturation, hue, swap = (rand.randint(2) for _ in range(6))
        return (mode, brightness, contrast, saturation, hue, swap,
                rand.uniform(-self.brightness_delta, self.brightness_delta),
                rand.uniform(self.contrast_lower, self.contrast_upper),
                rand.uniform(self.saturation_lower, self.saturation_upper),
                rand.uniform(-self.hue_delta, self.hue_delta), rand.permutation(3))

    def transform(self, results: dict) -> dict:
        if results.get('img') is None:
            raise KeyError("PhotoMetricDistortion needs 'img': put it after LoadImageFromFile")
        img = results['img'].astype(np.float32)
        (mode, brightness, contrast, saturation, hue, swap, delta, alpha, sat_value, hue_value,
         order) = self._random_flags()
        if brightness:
            img += delta
        if mode == 1 and contrast:
            img *= alpha
        img = mmcv.bgr2hsv(img)
        if saturation:
            img[..., 1] *= sat_value
            if sat_value > 1:  # float HSV saturation lives in [0, 1]
                img[..., 1] = img[..., 1].clip(0, 1)
        if hue:
            img[..., 0] += hue_value
            img[..., 0][img[..., 0] > 360] -= 360
            img[..., 0][img[..., 0] < 0] += 360
        img = mmcv.hsv2bgr(img)
        if mode == 0 and contrast:
            img *= alpha
        if swap:
            img = img[..., order]
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(brightness_delta={self.brightness_delta}, '
                f'contrast_range={(self.contrast_lower, self.contrast_upper)}, '
                f'saturation_range={(self.saturation_lower, self.saturation_upper)}, hue_delta={self.hue_delta})')
