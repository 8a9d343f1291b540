"""Pictures: a grid of images saved as a PNG (Pillow).

Images are NCHW in [0, 1] with 1 or 3 channels; the grid puts ``nrow`` images on a
row with a ``padding``-pixel border and scales each image up by ``scale`` so 8x8
digits are visible.
"""
import os

import numpy as np

from .autograd.tensor import Tensor


def make_grid(images, nrow=8, padding=1, scale=1, pad_value=0.5):
    """(N, C, H, W) in [0, 1] -> one (rows*(H+p)+p, nrow*(W+p)+p, C) uint8 array."""
    x = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"make_grid: expected images (N, 1 or 3, H, W), got shape {x.shape}")
    if scale > 1:
        x = x.repeat(scale, axis=2).repeat(scale, axis=3)
    n, c, h, w = x.shape
    nrow = max(1, min(nrow, n))
    rows = -(-n // nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value,
                   dtype=np.float32)
    for k in range(n):  # one slice copy per image, not per pixel
        r, col = divmod(k, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top:top + h, left:left + w] = x[k].transpose(1, 2, 0)
    return (np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_grid(images, path, nrow=8, padding=1, scale=4):
    """Save images as a PNG grid (written to a temporary file, then renamed)."""
    from PIL import Image
    grid = make_grid(images, nrow=nrow, padding=padding, scale=scale)
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
