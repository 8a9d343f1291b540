"""Pictures, drawn with Pillow: a grid of images, line charts and scatter plots, saved as PNGs.

Images are NCHW in [0, 1] with 1 or 3 channels; the grid puts ``nrow`` images on a
row with a ``padding``-pixel border and scales each image up by ``scale`` so 8x8
digits are visible. A line chart may have a second y axis on the right with its
own scale (the test metric beside the training losses in ``losses.png``).
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


# --- charts drawn with Pillow ---------------------------------------------------
# The command line plots losses and 2-D samples. A plotting library would be a heavy
# dependency for two simple pictures, so they are drawn here with PIL.ImageDraw:
# map data coordinates to pixels, draw axes, ticks, polylines and a legend.

# Ten distinguishable colours (the "tab10" palette), one per line.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


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


def _save_png(img, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)
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


def save_scatter(points, path, reference=None, title="", size=(400, 400)):
    """A scatter plot of 2-D ``points`` (N, 2), over grey ``reference`` points (the data) if given."""
    from PIL import Image, ImageDraw
    points = np.asarray(points.numpy() if isinstance(points, Tensor) else points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"save_scatter: expected points of shape (N, 2), got {points.shape}")
    img = Image.new("RGB", size, (255, 255, 255))
    draw, font = ImageDraw.Draw(img), _font()
    everything = points if reference is None else np.concatenate([points, np.asarray(reference)])
    lo, hi = _limits(everything[:, 0]), _limits(everything[:, 1])
    # one square range for both axes, so circles stay circles
    half = max(lo[1] - lo[0], hi[1] - hi[0]) / 2
    cx, cy = (lo[0] + lo[1]) / 2, (hi[0] + hi[1]) / 2
    frame = _Frame(size, (48, 12, 28, 28), (cx - half, cx + half), (cy - half, cy + half))
    _axes(draw, frame, font, title, "", "")
    layers = [] if reference is None else [(np.asarray(reference, np.float64), (170, 170, 170))]
    for data, colour in layers + [(points, PALETTE[0])]:
        for x, y in data[np.isfinite(data).all(axis=1)]:
            u, v = frame.px(x, y)
            draw.rectangle([u - 1, v - 1, u + 1, v + 1], fill=colour)
    return _save_png(img, path)
