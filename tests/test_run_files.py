"""What a run writes: the loss history, log.csv's columns, and losses.png's second axis.

- ``LossHistory.means_after``: each loss's mean over the steps that reported it,
  equal to a direct NumPy mean over a hypothesis-drawn pattern of reported steps;
  its checkpoint state round-trips, and the older aligned layout (NaN = absent) reads back.
- ``RunLog``: a column that appears late widens the header, earlier rows get empty
  cells; a resumed log drops the rows past the checkpoint and stays rectangular.
- ``logged_test_metric``: the headline test metric of log.csv (nll_nats, else the
  first), its empty cells left out.
- ``save_line_plot(..., right=...)``: the right series is drawn on its own scale
  (it spans the plot's height although its values are far outside the left axis),
  with tick labels in its colour right of the frame.
"""
import csv

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinygen import imaging
from tinygen.run_files import LossHistory, RunLog, merge_columns, plot_losses, logged_test_metric


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(-1e3, 1e3)), min_size=1, max_size=60),
       st.integers(0, 60))
def test_window_means_average_only_the_steps_that_reported(pattern, lo):
    history = LossHistory()
    for step, (reported, value) in enumerate(pattern, start=1):
        history.record(step, {"critic": -value, **({"generator": value} if reported else {})})
    means = history.means_after(lo)
    steps = np.arange(1, len(pattern) + 1)
    gen = np.array([v for (r, v) in pattern if r])
    gen_steps = steps[[r for r, _ in pattern]]
    in_window = gen[gen_steps > lo]
    if in_window.size:
        assert means["generator"] == pytest.approx(in_window.mean(), rel=1e-12, abs=1e-12)
    else:
        assert "generator" not in means      # absent, not NaN
    critic = -np.array([v for _, v in pattern])[steps > lo]
    assert ("critic" in means) == bool(critic.size)
    assert all(np.isfinite(v) for v in means.values())

    again = LossHistory.from_state(history.state())
    assert again.losses == history.losses


def test_the_older_aligned_history_layout_reads_back():
    old = {"step": np.array([1, 2, 3, 4]), "d": np.array([1.0, 2.0, 3.0, 4.0]),
           "g": np.array([np.nan, 5.0, np.nan, 7.0])}
    history = LossHistory.from_state(old)
    assert history.losses == {"d": ([1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]), "g": ([2, 4], [5.0, 7.0])}
    assert history.means_after(2) == {"d": 3.5, "g": 7.0}


def test_series_bins_long_histories_by_their_own_steps():
    history = LossHistory()
    for step in range(1, 1001):
        history.record(step, {"d": float(step), **({"g": 1.0} if step % 10 == 0 else {})})
    series = history.series(points=100)
    x, y = series["d"]
    assert len(x) == 100 and x[0] == 5.5 and y[0] == 5.5            # bins of 10 steps, their means
    gx, gy = series["g"]
    np.testing.assert_array_equal(gx, np.arange(10, 1001, 10))      # 100 points: no binning needed


def test_merge_columns_places_a_late_key_after_its_neighbour():
    assert merge_columns([], ["step", "d"]) == ["step", "d"]
    assert merge_columns(["step", "d", "test_fd"], ["step", "d", "g", "test_fd"]) == ["step", "d", "g", "test_fd"]
    assert merge_columns(["step", "d"], ["step", "test_fd"]) == ["step", "test_fd", "d"]
    assert merge_columns(["step", "d", "g"], ["step", "d"]) == ["step", "d", "g"]   # never narrower


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_a_late_column_widens_the_log_and_resume_keeps_it_rectangular(tmp_path):
    path = str(tmp_path / "log.csv")
    log = RunLog(path)
    log.append({"step": 10, "d": 1.5, "test_nll": 3.0})
    log.append({"step": 20, "d": 1.25, "g": 0.5, "test_nll": 2.5})
    log.append({"step": 30, "d": 1.0, "test_nll": 2.0})
    assert rows_of(path) == [["step", "d", "g", "test_nll"], ["10", "1.5", "", "3"],
                             ["20", "1.25", "0.5", "2.5"], ["30", "1", "", "2"]]

    resumed = RunLog(path, resume_step=20)      # rows past the checkpoint go; the header stays
    assert rows_of(path) == [["step", "d", "g", "test_nll"], ["10", "1.5", "", "3"], ["20", "1.25", "0.5", "2.5"]]
    resumed.append({"step": 30, "d": 1.0, "h": 9.0, "test_nll": 2.0})
    table = rows_of(path)
    assert table[0] == ["step", "d", "h", "g", "test_nll"]
    assert all(len(r) == 5 for r in table) and table[3] == ["30", "1", "9", "", "2"]

    RunLog(path)                                # a new run starts a new log
    assert not (tmp_path / "log.csv").exists()


def write_log(path, header, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header] + rows)


def test_the_plotted_test_metric_is_the_headline_one_without_empty_cells(tmp_path):
    log = tmp_path / "log.csv"
    write_log(log, ["step", "d", "test_bits_per_dim", "test_nll_nats"],
              [["10", "1", "0.9", "40"], ["20", "1", "", ""], ["30", "1", "0.8", "35.5"]])
    name, (steps, values) = logged_test_metric(log)
    assert name == "nll_nats"
    np.testing.assert_array_equal(steps, [10, 30])
    np.testing.assert_array_equal(values, [40, 35.5])

    write_log(log, ["step", "d", "test_fd", "test_kl"], [["10", "1", "2", "3"]])
    assert logged_test_metric(log)[0] == "fd"                 # else the model's first metric
    write_log(log, ["step", "d"], [["10", "1"]])
    assert logged_test_metric(log) == (None, None)           # no test metric: no second axis
    assert logged_test_metric(tmp_path / "none.csv") == (None, None)


def pixels_of(path, colour, tint=False):
    """(row, column) of the pixels of ``colour``; with ``tint`` also of its blends with white
    of at least 30% (anti-aliased text in that colour)."""
    with Image.open(path) as im:
        px = np.asarray(im.convert("RGB")).astype(float)
    if not tint:
        return np.argwhere((np.abs(px - colour) <= 8).all(axis=2))
    depth = 255.0 - np.asarray(colour, float)                 # px = 255 - t * depth for a blend t
    t = (255.0 - px) / np.maximum(depth, 1.0)
    strong = depth > 60                                       # channels where the blend shows
    ts = t[..., strong]
    same = (ts.max(axis=-1) - ts.min(axis=-1) < 0.15) & (ts.min(axis=-1) >= 0.3)
    flat = (np.abs(255.0 - px[..., ~strong] - t[..., strong].mean(-1, keepdims=True) * depth[~strong])
            <= 40).all(axis=-1)
    return np.argwhere(same & flat)


def test_the_test_metric_has_its_own_axis_on_the_right(tmp_path):
    steps = np.arange(1, 301, dtype=float)
    left = {"loss": (steps, 1.0 / steps)}                  # in (0, 1]
    right = {"test nll": (np.array([100.0, 200.0, 300.0]), np.array([500.0, 450.0, 470.0]))}   # far above it
    x1, y0, y1 = 640 - 64, 36, 400 - 42     # save_line_plot's frame (640 x 400) with a right axis
    imaging.save_line_plot(left, tmp_path / "twin.png", right=right, right_label="test nll", ylabel="loss")
    imaging.save_line_plot(left, tmp_path / "one.png", ylabel="loss")
    second = imaging.PALETTE[1]

    assert len(pixels_of(tmp_path / "one.png", second)) == 0
    at = pixels_of(tmp_path / "twin.png", second)
    inside = at[(at[:, 1] > 64) & (at[:, 1] < x1 - 1) & (at[:, 0] > y0) & (at[:, 0] < y1)]
    # on its own scale the metric's line spans most of the frame's height (on the left scale,
    # 450..500 would lie far above the frame); its leftmost point is at step 100 of 1..300
    assert inside[:, 0].max() - inside[:, 0].min() > 0.7 * (y1 - y0)
    assert abs(inside[:, 1].min() - (64 + (100 - 1) / 299 * (x1 - 64))) <= 4
    text = pixels_of(tmp_path / "twin.png", second, tint=True)
    assert (text[:, 1] > x1 + 5).sum() > 40                 # tick labels right of the frame, in its colour
    assert (pixels_of(tmp_path / "one.png", second, tint=True)[:, 1] > x1 + 5).sum() == 0


def test_losses_png_draws_the_logged_test_metric(tmp_path):
    history = LossHistory()
    for step in range(1, 41):
        history.record(step, {"nll": 50.0 - step / 2})
    write_log(tmp_path / "log.csv", ["step", "nll", "test_nll_nats"],
              [["20", "45", "44"], ["40", "40", "43.5"]])
    plot_losses(history, tmp_path / "log.csv", tmp_path / "losses.png", "t")
    assert len(pixels_of(tmp_path / "losses.png", imaging.PALETTE[1])) > 50
    plot_losses(history, tmp_path / "missing.csv", tmp_path / "bare.png", "t")
    assert len(pixels_of(tmp_path / "bare.png", imaging.PALETTE[1])) == 0
