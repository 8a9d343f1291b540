"""Pictures, drawn with Pillow: a grid of images, line charts and scatter plots, saved as PNGs
(or JPEGs, for a file name ending in .jpg or .jpeg).

Images are NCHW in [0, 1] with 1 or 3 channels; the grid puts ``nrow`` images on a
row with a ``padding``-pixel border and scales each image up by ``scale`` so 8x8
digits are visible. A line chart may have a second y axis on the right with its
own scale (the test metric beside the training losses in ``losses.png``).
"""
import os

import numpy as np

from .autograd.tensor import Tensor
from .atomic_files import atomic_write


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
    return _save_png(img, path)


# --- charts drawn with Pillow ---------------------------------------------------
# The command line plots losses and 2-D samples. A plotting library would be a heavy
# dependency for two simple pictures, so they are drawn here with PIL.ImageDraw:
# map data coordinates to pixels, draw axes, ticks, polylines and a legend.

# Ten distinguishable colours (the "tab10" palette), one per line.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
REFERENCE_GREY = (200, 200, 200)   # the data (or prior draws) under a scatter: lighter than PALETTE[7]


def nice_ticks(lo, hi, count=5):
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    # whole multiples of the step, so zero is exactly 0 (not -0 or 5.6e-17)
    k = np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1)
    return [float(v) + 0.0 for v in k * step]


def _fmt(v):
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2e}"


def _font():
    from PIL import ImageFont
    return ImageFont.load_default()


def _text_size(draw, text, font):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}   # file name ending -> Pillow format


def _save_png(img, path):
    """Save ``img`` in the format its name asks for (PNG unless .jpg/.jpeg), atomically:
    a uniquely named temporary file in the same folder, then a rename."""
    fmt = IMAGE_FORMATS.get(os.path.splitext(os.fspath(path))[1].lower(), "PNG")
    atomic_write(path, lambda f: img.save(f, format=fmt))
    return path


class _Frame:
    """The plotting area of a chart: data coordinates -> pixel coordinates."""

    def __init__(self, size, margins, xlim, ylim):
        (w, h), (left, right, top, bottom) = size, margins
        self.x0, self.x1, self.y0, self.y1 = left, w - right, top, h - bottom
        self.width, self.height = w, h
        self.xlim, self.ylim = xlim, ylim

    def px(self, x, y):
        (xa, xb), (ya, yb) = self.xlim, self.ylim
        u = self.x0 + (x - xa) / (xb - xa) * (self.x1 - self.x0)
        v = self.y1 - (y - ya) / (yb - ya) * (self.y1 - self.y0)   # pixel rows grow downwards
        return u, v


def _limits(values, pad=0.05):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        lo, hi = lo - 1.0, hi + 1.0   # a flat line still needs a visible range
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _axes(draw, frame, font, title, xlabel, ylabel):
    """Grid lines, ticks with labels, the frame and the titles (the y label above its axis)."""
    grid, ink = (225, 225, 225), (0, 0, 0)
    for x in nice_ticks(*frame.xlim):
        u, _ = frame.px(x, frame.ylim[0])
        draw.line([(u, frame.y0), (u, frame.y1)], fill=grid)
        label = _fmt(x)
        tw, _ = _text_size(draw, label, font)
        draw.text((u - tw / 2, frame.y1 + 4), label, fill=ink, font=font)
    for y in nice_ticks(*frame.ylim):
        _, v = frame.px(frame.xlim[0], y)
        draw.line([(frame.x0, v), (frame.x1, v)], fill=grid)
        label = _fmt(y)
        tw, th = _text_size(draw, label, font)
        draw.text((frame.x0 - tw - 5, v - th / 2 - 1), label, fill=ink, font=font)
    draw.rectangle([frame.x0, frame.y0, frame.x1, frame.y1], outline=ink)
    if title:
        tw, _ = _text_size(draw, title, font)
        draw.text(((frame.x0 + frame.x1) / 2 - tw / 2, 4), title, fill=ink, font=font)
    if xlabel:
        tw, _ = _text_size(draw, xlabel, font)
        draw.text(((frame.x0 + frame.x1) / 2 - tw / 2, frame.y1 + 20), xlabel, fill=ink, font=font)
    if ylabel:
        _, th = _text_size(draw, ylabel, font)
        draw.text((4, frame.y0 - th - 6), ylabel, fill=ink, font=font)


def _right_axis(draw, frame, font, label, colour):
    """A second y axis on the frame's right edge: tick marks and labels in ``colour``, no grid."""
    for y in nice_ticks(*frame.ylim):
        _, v = frame.px(frame.xlim[0], y)
        draw.line([(frame.x1, v), (frame.x1 + 4, v)], fill=colour, width=2)
        _, th = _text_size(draw, _fmt(y), font)
        draw.text((frame.x1 + 7, v - th / 2 - 1), _fmt(y), fill=colour, font=font)
    draw.line([(frame.x1, frame.y0), (frame.x1, frame.y1)], fill=colour, width=2)
    if label:
        tw, th = _text_size(draw, label, font)
        draw.text((frame.width - tw - 4, frame.y0 - th - 6), label, fill=colour, font=font)


def _legend(draw, frame, font, entries):
    """A white box in the upper right corner: a colour swatch and a name per entry."""
    if not entries:
        return
    sizes = [_text_size(draw, name, font) for name, _ in entries]
    line_h = max(h for _, h in sizes) + 6
    box_w = max(w for w, _ in sizes) + 34
    right, top = frame.x1 - 8, frame.y0 + 8
    draw.rectangle([right - box_w, top, right, top + line_h * len(entries) + 6],
                   fill=(255, 255, 255), outline=(160, 160, 160))
    for k, (name, colour) in enumerate(entries):
        y = top + 6 + k * line_h + line_h / 2 - 3
        draw.line([(right - box_w + 6, y), (right - box_w + 24, y)], fill=colour, width=3)
        draw.text((right - box_w + 30, y - line_h / 2 + 2), name, fill=(0, 0, 0), font=font)


def _line(draw, frame, x, y, colour, dots=False):
    """One series as a polyline (a dot if it has one point), non-finite points left out."""
    ok = np.isfinite(x) & np.isfinite(y)
    points = [frame.px(a, b) for a, b in zip(x[ok], y[ok])]
    if len(points) > 1:
        draw.line(points, fill=colour, width=2)
    if dots or len(points) == 1:
        for u, v in points:
            draw.ellipse([u - 2.5, v - 2.5, u + 2.5, v + 2.5], fill=colour)


def save_line_plot(series, path, title="", xlabel="step", ylabel="", size=(640, 400),
                   right=None, right_label=""):
    """Plot ``{name: (x, y)}`` as one line per name, with axes and a legend, into a PNG.

    ``right``, another ``{name: (x, y)}``, is drawn against a second y axis on the
    right with its own scale (``right_label``, ticks in its first line's colour), as
    lines with a dot per point: a test metric measured every few hundred steps
    beside the training losses of every step. Non-finite values (a diverged loss)
    are left out of the lines rather than stretching an axis to infinity.
    """
    from PIL import Image, ImageDraw
    img = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(img), _font()
    left, right = _as_float(series), _as_float(right or {})
    everything = list(left.values()) + list(right.values())
    xlim = _limits(np.concatenate([x for x, _ in everything]) if everything else [], pad=0.0)
    margins = (64, 64 if right else 16, 36, 42)
    frame = _Frame(size, margins, xlim, _limits(np.concatenate([y for _, y in left.values()]) if left else []))
    _axes(draw, frame, font, title, xlabel, ylabel)
    colours = [PALETTE[k % len(PALETTE)] for k in range(len(everything))]
    entries = []
    for (name, (x, y)), colour in zip(left.items(), colours):
        _line(draw, frame, x, y, colour)
        entries.append((name, colour))
    if right:
        ys = np.concatenate([y for _, y in right.values()])
        second = _Frame(size, margins, xlim, _limits(ys))
        _right_axis(draw, second, font, right_label, colours[len(left)])
        for (name, (x, y)), colour in zip(right.items(), colours[len(left):]):
            _line(draw, second, x, y, colour, dots=True)
            entries.append((f"{name} (right axis)", colour))
    _legend(draw, frame, font, entries)
    return _save_png(img, path)


def _as_float(series):
    return {name: (np.asarray(x, np.float64), np.asarray(y, np.float64)) for name, (x, y) in series.items()}


def scatter_array(points, reference=None, labels=None, title="", size=(400, 400), centers=None):
    """A scatter plot of 2-D ``points`` (N, 2) over grey ``reference`` points, as a uint8 (H, W, 3) array.

    ``labels`` (N,) non-negative ints colour each point by ``PALETTE[label % 10]`` (a latent
    space coloured by digit); without them every point takes the first colour. ``centers``
    (K, 2) are marked with black crosses on top (a toy mixture's modes)."""
    from PIL import Image, ImageDraw
    points = np.asarray(points.numpy() if isinstance(points, Tensor) else points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"scatter_array: expected points of shape (N, 2), got {points.shape}")
    if reference is not None:
        reference = np.asarray(reference.numpy() if isinstance(reference, Tensor) else reference, np.float64)
        if reference.ndim != 2 or reference.shape[1] != 2:
            raise ValueError(f"scatter_array: expected reference points of shape (M, 2), got {reference.shape}")
    if labels is not None:
        labels = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels).astype(np.int64)
        if labels.shape != (len(points),) or (labels < 0).any():
            raise ValueError(f"scatter_array: labels must be {len(points)} non-negative ints, one per point, "
                             f"got shape {labels.shape}")
    img = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(img), _font()
    everything = points if reference is None else np.concatenate([points, reference])
    lo, hi = _limits(everything[:, 0]), _limits(everything[:, 1])
    # one square range for both axes, so circles stay circles
    half = max(lo[1] - lo[0], hi[1] - hi[0]) / 2
    cx, cy = (lo[0] + lo[1]) / 2, (hi[0] + hi[1]) / 2
    frame = _Frame(size, (48, 12, 28, 28), (cx - half, cx + half), (cy - half, cy + half))
    _axes(draw, frame, font, title, "", "")
    colours = np.zeros(len(points), np.int64) if labels is None else labels % len(PALETTE)
    layers = [] if reference is None else [(reference, np.full(len(reference), -1))]
    for data, colour_ids in layers + [(points, colours)]:
        keep = np.isfinite(data).all(axis=1)
        for (x, y), c in zip(data[keep], colour_ids[keep]):
            u, v = frame.px(x, y)
            draw.rectangle([u - 1, v - 1, u + 1, v + 1], fill=REFERENCE_GREY if c < 0 else PALETTE[c])
    for x, y in ([] if centers is None else np.asarray(centers, np.float64).reshape(-1, 2)):
        u, v = frame.px(x, y)
        draw.line([u - 5, v, u + 5, v], fill=(0, 0, 0), width=2)
        draw.line([u, v - 5, u, v + 5], fill=(0, 0, 0), width=2)
    return np.asarray(img)


def save_array(pixels, path):
    """Save a uint8 picture (H, W) or (H, W, 3), as a model's ``pictures()`` returns them."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ValueError(f"save_array: expected a uint8 array (H, W) or (H, W, 3), got {pixels.dtype} "
                         f"of shape {pixels.shape}")
    from PIL import Image
    return _save_png(Image.fromarray(pixels), path)


def save_scatter(points, path, reference=None, title="", size=(400, 400)):
    """A scatter plot of 2-D ``points`` (N, 2), over grey ``reference`` points (the data) if given."""
    from PIL import Image
    try:
        pixels = scatter_array(points, reference=reference, title=title, size=size)
    except ValueError as exc:
        raise ValueError(str(exc).replace("scatter_array", "save_scatter")) from None
    return _save_png(Image.fromarray(pixels), path)
