"""Small conversions shared by the metrics."""
import numpy as np


def to_numpy(value) -> np.ndarray:
    """Tensor (any device) or array-like -> numpy array."""
    if hasattr(value, 'detach'):
        return value.detach().cpu().numpy()
    return np.asarray(value)
