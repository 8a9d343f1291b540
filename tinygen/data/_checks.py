"""The argument checks shared by the derived data sets (captions, domains, attributes).

Each returns a NumPy array the caller may read but must not write (it can be the
caller's own array); a bad argument is a ValueError or TypeError that names the
function, the argument and its shape or values.
"""
import numpy as np


def image_array(images, op):
    """``images`` as a real, finite ``(N, C, H, W)`` NumPy array (float32 unless it is float64)."""
    if hasattr(images, "numpy") and not isinstance(images, np.ndarray):
        images = images.numpy()   # a tinygen Tensor
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"{op}: images must be (N, C, H, W), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)) \
            or array.dtype == np.bool_:
        raise TypeError(f"{op}: images must hold real numbers, got dtype {array.dtype}")
    if array.dtype != np.float64:
        array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(f"{op}: images hold NaN or infinite values (shape {array.shape})")
    return array


def label_array(labels, count, op, num_classes=None):
    """``labels`` as an int64 ``(count,)`` array, each in ``0..num_classes-1`` when that is given."""
    if hasattr(labels, "numpy") and not isinstance(labels, np.ndarray):
        labels = labels.numpy()
    array = np.asarray(labels)
    if array.shape != (count,):
        raise ValueError(f"{op}: labels must have one entry per image, got shape {array.shape} "
                         f"for {count} images")
    if count and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{op}: labels must be whole numbers (class indices), got dtype {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if num_classes is not None and count and (array.min() < 0 or array.max() >= num_classes):
        bad = np.unique(array[(array < 0) | (array >= num_classes)])
        raise ValueError(f"{op}: labels must be in 0..{num_classes - 1}, got {bad[:5].tolist()}")
    return array
