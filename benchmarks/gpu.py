"""tinygen on a GPU: its CUDA kernels beside CuPy's own references, and every model's training step.

    python benchmarks/gpu.py [--device cuda|cuda:N|cpu] [--models a,b,...] [--steps N] [--out FILE]

1. Kernels (GPU only). Each row is one computation, done two ways on the same
   device arrays and timed in the same run, the two sides alternating in rounds
   (``_timing.measure_pair``, the device synchronised around every timed batch):

   conv2d forward      y = w2 cols                tinygen: the im2col kernel + one cuBLAS GEMM
   conv2d input grad   dx = col2im(w2^T dy)       tinygen: one GEMM + the col2im kernel
   conv2d weight grad  dw = sum_n dy[n] cols[n]^T tinygen "(kernel)": im2col + conv2d_grad_weight;
                                                  "(GEMM)": im2col + one GEMM, what F.conv2d's
                                                  backward runs (``_conv_arrays._conv_weight_grad``)
   LSTM cell fwd/bwd   lstm.cu                    the cell's equations as CuPy expressions
   Row LSTM step       pixelrnn.cu, K = 3         the taps gathered by slicing, then the same
   Diagonal LSTM step  pixelrnn.cu, K = 2         CuPy cell expressions

   (w2 = w as an (O, C kh kw) matrix, cols = im2col(x): see kernels/conv2d.cu.) The
   tinygen side of conv2d is what F.conv2d runs on CuPy arrays (``_conv_arrays``);
   conv_transpose2d's forward is conv2d's input gradient, so it has no row of its own.
   The convolutions' reference is cuDNN, the library the issue's target names
   ("within 2x of cuDNN"): through ``cupyx.cudnn`` where this CuPy has it (CuPy 14
   removed it), else through PyTorch when it is installed with CUDA (the same device
   memory, handed over by DLPack without a copy; TF32 off, so both sides compute in
   IEEE float32), else im2col written with CuPy slicing and ``cupy.matmul``. The
   reference column says which. The LSTM kernels are fused: one launch does the ~15
   elementwise operations that the CuPy expression launches one by one, so ratio < 1
   is the point of them. The steps run as the scan runs them, in place (gates over
   the pre-activations, dL/dc_{t-1} over dL/dc_t).

   Before timing, each pair is compared: max |tinygen - reference| over every
   output, in float32 and float64; a difference above ``TOLERANCE`` times the
   largest reference value is flagged (!) and makes the exit status 1.

2. Models (any device). Every registered model (or ``--models``) built at its
   defaults for 8x8 digits, as ``tinygen train`` builds it, on the device; one
   batch of its default size is moved there once, and ``train_step`` on it is
   timed per step after warm-up steps (median ms/step of ``--steps`` steps), then
   ``sample(64)`` (the translation models draw nothing from noise: no sample).

``--out FILE`` writes both tables as Markdown with the device, the CuPy, CUDA
and driver versions and the date. ``--device cpu`` runs the model table alone
(a check that runs anywhere). Without CuPy or a GPU, ``--device cuda`` says
which is missing in one line and exits with status 2.
"""
import argparse
import datetime
import os
import platform
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinygen  # noqa: E402
from tinygen import backend  # noqa: E402
from tinygen.functional import _conv_arrays as conv_arrays  # noqa: E402
from _timing import measure_pair, print_table  # noqa: E402

# (label, N, C_in, H, W, C_out, k, stride, padding): benchmarks/conv.py's DCGAN / digits layers,
# a 64x64 DCGAN discriminator's second layer and a PixelCNN hidden 3x3 layer on 28x28 images
CONV_CASES = [
    ("DCGAN D1 28x28", 64, 1, 28, 28, 64, 4, 2, 1),
    ("DCGAN D2 14x14", 64, 64, 14, 14, 128, 4, 2, 1),
    ("digits 8x8", 128, 32, 8, 8, 64, 3, 2, 1),
    ("DCGAN-64 D2", 64, 128, 32, 32, 256, 4, 2, 1),
    ("PixelCNN 3x3", 32, 128, 28, 28, 128, 3, 1, 1),
]
# (label, N, H): benchmarks/lstm.py's cell sizes, and a PixelRNN scan's N*S rows
CELL_CASES = [("lstm.py MNIST rows", 64, 128), ("lstm.py large", 64, 256), ("PixelRNN N*S rows", 1792, 128)]
# (label, N, S, H): one step of a scan over lines of S pixels with H hidden channels
STEP_CASES = [("digits 8x8", 64, 8, 32), ("MNIST 28x28", 64, 28, 128)]
SCANS = {"Row LSTM": ("row", 3, 1), "Diagonal LSTM": ("diagonal", 2, 1)}   # name: (launcher, K, pad)
DTYPES = (np.float32, np.float64)
# Flag when max|diff| > TOLERANCE * max(1, max|reference|): above the rounding of either side, also
# of cuDNN's Winograd and FFT algorithms (~1e-5 in float32), far below what a wrong index gives.
TOLERANCE = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}
KERNEL_TIMING = dict(repeat=5, rounds=3, min_time=0.01)   # ~0.3 s per row and side: a short run
WARMUP_STEPS = 3
SAMPLE_N = 64


# --- the references, written with array ops only (run with NumPy too) -------------------

def milliseconds(seconds):
    """``seconds`` in ms to three significant digits, without an exponent: 0.0123, 4.56, 789."""
    ms = seconds * 1e3
    digits = 2 - int(np.floor(np.log10(ms))) if ms > 0 else 3
    return f"{ms:.{max(0, digits)}f}"


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def ref_im2col(xp, x, k, s, p):
    """cols (N, C k k, Ho Wo) of x (N, C, H, W): one strided slice copy per kernel offset (i, j)."""
    n, c, h, w = x.shape
    ho, wo = out_size(h, k, s, p), out_size(w, k, s, p)
    padded = xp.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype)
    padded[:, :, p:p + h, p:p + w] = x
    cols = xp.empty((n, c, k, k, ho, wo), x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = padded[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s]
    return cols.reshape(n, c * k * k, ho * wo)


def ref_col2im(xp, cols, x_shape, k, s, p):
    """The adjoint of ref_im2col: each offset's columns added back onto the pixels they came from."""
    n, c, h, w = x_shape
    ho, wo = out_size(h, k, s, p), out_size(w, k, s, p)
    c6 = cols.reshape(n, c, k, k, ho, wo)
    padded = xp.zeros((n, c, h + 2 * p, w + 2 * p), cols.dtype)
    for i in range(k):
        for j in range(k):
            padded[:, :, i:i + s * (ho - 1) + 1:s, j:j + s * (wo - 1) + 1:s] += c6[:, :, i, j]
    return padded[:, :, p:p + h, p:p + w]


class ArrayConv:
    """conv2d and its two gradients as im2col / col2im by slicing and ``xp.matmul`` (cuBLAS on CuPy)."""
    name = "CuPy"
    about = "CuPy: im2col and col2im by slicing, GEMMs by cupy.matmul (cuBLAS)"

    def __init__(self, xp):
        self.xp = xp

    def bind(self, x, w, gy, s, p):
        """op -> a call computing it on these arrays (each returns an array of xp)."""
        xp, (n, o), k = self.xp, gy.shape[:2], w.shape[2]
        w2, gy3 = w.reshape(o, -1), gy.reshape(n, o, -1)
        return {
            "forward": lambda: xp.matmul(w2, ref_im2col(xp, x, k, s, p)).reshape(gy.shape),
            "input grad": lambda: ref_col2im(xp, xp.matmul(w2.T, gy3), x.shape, k, s, p),
            "weight grad": lambda: xp.tensordot(gy3, ref_im2col(xp, x, k, s, p), axes=([0, 2], [0, 2]))
                                     .reshape(w.shape),
        }


class CupyxCudnnConv:
    """cuDNN through CuPy's own wrappers (``cupyx.cudnn``, CuPy 8-13), algorithms auto-tuned."""

    def __init__(self, cp):
        try:
            from cupyx import cudnn
        except Exception:       # ImportError, or CuPy built without cuDNN / libcudnn missing
            from cupy import cudnn
        self.cp, self.cudnn = cp, cudnn
        self.name = "cuDNN (CuPy)"
        self.about = f"cuDNN (CuPy): cuDNN {cp.cuda.cudnn.getVersion()} through cupyx.cudnn, auto-tuned"

    def bind(self, x, w, gy, s, p):
        cp, cudnn, pad, stride, dilation = self.cp, self.cudnn, (p, p), (s, s), (1, 1)

        def forward():
            y = cp.empty(gy.shape, gy.dtype)
            cudnn.convolution_forward(x, w, None, y, pad, stride, dilation, 1, auto_tune=True, tensor_core="auto")
            return y

        def input_grad():
            gx = cp.empty(x.shape, x.dtype)   # backward data: W, the gradient (its "x"), no bias, the result
            cudnn.convolution_backward_data(w, gy, None, gx, pad, stride, dilation, 1, deterministic=False,
                                            auto_tune=True, tensor_core="auto")
            return gx

        def weight_grad():
            gw = cp.empty(w.shape, w.dtype)
            cudnn.convolution_backward_filter(x, gy, gw, pad, stride, dilation, 1, deterministic=False,
                                              auto_tune=True, tensor_core="auto")
            return gw
        return {"forward": forward, "input grad": input_grad, "weight grad": weight_grad}


class TorchConv:
    """cuDNN through PyTorch on the same device memory (DLPack: no copy), TF32 off, algorithms benchmarked."""

    def __init__(self, torch):
        if not torch.cuda.is_available():
            raise RuntimeError(f"PyTorch {torch.__version__} sees no CUDA GPU")
        torch.backends.cudnn.benchmark = True
        # IEEE float32, as CuPy's GEMMs compute it (PyTorch >= 2.9 names this fp32_precision)
        conv = getattr(torch.backends.cudnn, "conv", None)
        if hasattr(conv, "fp32_precision"):
            conv.fp32_precision = "ieee"
        else:
            torch.backends.cudnn.allow_tf32 = False
        self.torch = torch
        lib = f"cuDNN {torch.backends.cudnn.version()}" if torch.backends.cudnn.is_available() else "no cuDNN"
        self.name = "cuDNN (torch)" if torch.backends.cudnn.is_available() else "torch"
        self.about = (f"{self.name}: {lib} through PyTorch {torch.__version__} on the same memory (DLPack), "
                      "TF32 off, cudnn.benchmark on")

    def bind(self, x, w, gy, s, p):
        torch = self.torch
        xt, wt, gt = (torch.from_dlpack(a) for a in (x, w, gy))
        return {
            "forward": lambda: torch.nn.functional.conv2d(xt, wt, stride=s, padding=p),
            "input grad": lambda: torch.nn.grad.conv2d_input(tuple(x.shape), wt, gt, stride=s, padding=p),
            "weight grad": lambda: torch.nn.grad.conv2d_weight(xt, tuple(w.shape), gt, stride=s, padding=p),
        }


def sigmoid(xp, z):
    return 1 / (1 + xp.exp(-z))


def ref_cell_forward(xp, pre, c_prev):
    """(h, c, gates) of the LSTM cell, pre = [i|f|g|o] on the last axis: one CuPy kernel per operation."""
    H = c_prev.shape[-1]
    i, f = sigmoid(xp, pre[..., :H]), sigmoid(xp, pre[..., H:2 * H])
    g, o = xp.tanh(pre[..., 2 * H:3 * H]), sigmoid(xp, pre[..., 3 * H:])
    c = f * c_prev + i * g
    return o * xp.tanh(c), c, xp.concatenate([i, f, g, o], axis=-1)


def ref_cell_backward(xp, gates, c_prev, c, dh, dc):
    """(dpre, dc_prev) of the LSTM cell from its activated gates (lstm.cu's equations)."""
    H = c.shape[-1]
    i, f, g, o = (gates[..., m * H:(m + 1) * H] for m in range(4))
    tc = xp.tanh(c)
    total = dc + dh * o * (1 - tc * tc)
    dpre = xp.concatenate([total * g * i * (1 - i), total * c_prev * f * (1 - f), total * i * (1 - g * g),
                           dh * tc * o * (1 - o)], axis=-1)
    return dpre, total * f


def add_taps(xp, base, taps, pad, sign):
    """base[:, s] + sum_k taps[:, s + d_k, k] (0 outside the line), d_k = sign (k - pad): the forward
    step's pre-activations (sign +1, taps = proj) or the backward step's dL/dh (sign -1, taps = q)."""
    out = base.copy()
    S = base.shape[1]
    for k in range(taps.shape[2]):
        d = sign * (k - pad)
        if abs(d) >= S:
            continue
        if d >= 0:
            out[:, :S - d] += taps[:, d:, k]
        else:
            out[:, -d:] += taps[:, :S + d, k]
    return out


# --- the kernel table -------------------------------------------------------------------

def max_diff(xp, ours, theirs, to_xp):
    """(max |ours - theirs|, max |theirs|) over matching outputs (an array or a tuple of them)."""
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    diff = scale = 0.0
    for a, b in zip(ours, theirs):
        b = to_xp(b)
        diff = max(diff, float(xp.abs(a - b).max()))
        scale = max(scale, float(xp.abs(b).max()))
    return diff, scale


class KernelBench:
    """Compares and times pairs (tinygen, reference) on array module ``xp``; collects the table's rows.

    ``k`` holds the launchers (the module ``tinygen.cuda`` on a GPU), ``sync`` drains
    the device, ``to_xp`` turns a reference's result into an xp array (PyTorch's
    tensors come back through DLPack), ``convs`` are the convolution references in
    order of preference (the last, ``ArrayConv``, always works).
    """

    def __init__(self, xp, k, sync, convs, to_xp=None, timing=None):
        self.xp, self.k, self.sync, self.convs = xp, k, sync, convs
        self.to_xp = to_xp or (lambda a: a)
        self.timing = timing or KERNEL_TIMING
        self.rows, self.flagged, self.notes = [], 0, []

    def pair(self, kernel, shape, dtype, ours, theirs, reference):
        diff, scale = max_diff(self.xp, ours(), theirs(), self.to_xp)
        bad = not diff <= TOLERANCE[np.dtype(dtype)] * max(scale, 1.0)   # NaN is bad too
        self.flagged += bad
        t_ours, t_ref, ratio = measure_pair(ours, theirs, sync=self.sync, **self.timing)
        self.rows.append([kernel, shape, np.dtype(dtype).name, milliseconds(t_ours), milliseconds(t_ref),
                          f"{ratio:.2f}", f"{diff:.1e}" + (" (!)" if bad else ""), reference])

    def random(self, rng, shape, dtype, scale=1.0):
        return self.xp.asarray((scale * rng.standard_normal(shape)).astype(dtype))

    def _reference_conv(self, op, arrays):
        """(call, name) of the first reference that computes ``op`` on ``arrays`` without an error."""
        for ref in self.convs:
            try:
                call = ref.bind(*arrays)[op]
                call()
                return call, ref.name
            except Exception as error:   # e.g. a cuDNN without float64 support for this shape
                note = f"{ref.name}: {op} failed ({type(error).__name__}: {error}); next reference used"
                if note not in self.notes:
                    self.notes.append(note)
        raise RuntimeError(f"no reference computes {op}")

    def conv(self, case, dtype):
        label, n, c, h, w, o, k, s, p = case
        rng = np.random.default_rng(0)
        x = self.random(rng, (n, c, h, w), dtype)
        wt = self.random(rng, (o, c, k, k), dtype, 1 / np.sqrt(c * k * k))
        gy = self.random(rng, (n, o, out_size(h, k, s, p), out_size(w, k, s, p)), dtype)
        shape = f"{label}: {n}x{c}x{h}x{w} -> {o}, k{k} s{s} p{p}"
        stride, padding, ker = (s, s), (p, p), self.k
        gy3 = gy.reshape(n, o, -1)
        ours = {
            "forward": lambda: conv_arrays._conv(x, wt, stride, padding)[0],
            "input grad": lambda: conv_arrays._conv_input_grad(gy, wt, x.shape, stride, padding),
            "weight grad (kernel)": lambda: ker.conv2d_grad_weight(gy3, ker.im2col(x, k, k, s, s, p, p))
                                              .reshape(wt.shape),
            "weight grad (GEMM)": lambda: conv_arrays._conv_weight_grad(x, gy, (k, k), stride, padding),
        }
        for op, call in ours.items():
            theirs, name = self._reference_conv(op.split(" (")[0], (x, wt, gy, s, p))
            self.pair(f"conv2d {op}", shape, dtype, call, theirs, name)

    def cell(self, case, dtype):
        label, N, H = case
        xp, rng, ker = self.xp, np.random.default_rng(1), self.k
        pre, c_prev = self.random(rng, (N, 4 * H), dtype, 3.0), self.random(rng, (N, H), dtype)
        dh, dc = self.random(rng, (N, H), dtype), self.random(rng, (N, H), dtype)
        _, c, gates = ref_cell_forward(xp, pre, c_prev)
        shape = f"{label}: N={N} H={H}"
        self.pair("LSTM cell forward", shape, dtype, lambda: ker.lstm_cell_forward(pre, c_prev),
                  lambda: ref_cell_forward(xp, pre, c_prev), "CuPy expr")
        self.pair("LSTM cell backward", shape, dtype, lambda: ker.lstm_cell_backward(gates, c_prev, c, dh, dc),
                  lambda: ref_cell_backward(xp, gates, c_prev, c, dh, dc), "CuPy expr")

    def step(self, scan, case, dtype):
        launcher, K, pad = SCANS[scan]
        label, N, S, H = case
        xp, rng = self.xp, np.random.default_rng(2)
        fwd = getattr(self.k, f"{launcher}_lstm_step_forward")
        bwd = getattr(self.k, f"{launcher}_lstm_step_backward")
        x, proj = self.random(rng, (N, S, 4 * H), dtype), self.random(rng, (N, S, K, 4 * H), dtype)
        c_prev, dy = self.random(rng, (N, S, H), dtype), self.random(rng, (N, S, H), dtype)
        q, dc = self.random(rng, (N, S, K, H), dtype), self.random(rng, (N, S, H), dtype)
        _, c, gates = ref_cell_forward(xp, add_taps(xp, x, proj, pad, +1), c_prev)
        shape = f"{label}: N={N} S={S} H={H}"
        # in place, as the scan runs them: G holds x_t and becomes the gates, D holds dL/dc_t and becomes
        # dL/dc_{t-1}; refilled for the comparison, then left to drift (bounded) while timed
        h_out, c_out, G = xp.empty_like(c_prev), xp.empty_like(c_prev), x.copy()
        dpre, D = xp.empty_like(x), dc.copy()
        self.pair(f"{scan} step forward", shape, dtype, lambda: fwd(G, proj, c_prev, out=(h_out, c_out, G)),
                  lambda: ref_cell_forward(xp, add_taps(xp, x, proj, pad, +1), c_prev), "CuPy expr")
        self.pair(f"{scan} step backward", shape, dtype, lambda: bwd(gates, c_prev, c, dy, q, D, out=(dpre, D)),
                  lambda: ref_cell_backward(xp, gates, c_prev, c, add_taps(xp, dy, q, pad, -1), dc),
                  "CuPy expr")

    def run(self, conv_cases=CONV_CASES, cell_cases=CELL_CASES, step_cases=STEP_CASES, dtypes=DTYPES):
        for dtype in dtypes:
            work = [(self.conv, (case, dtype)) for case in conv_cases]
            work += [(self.cell, (case, dtype)) for case in cell_cases]
            work += [(self.step, (scan, case, dtype)) for scan in SCANS for case in step_cases]
            for method, args in work:
                self._guarded(method, args)
        return self.rows

    def _guarded(self, method, args):
        """One case's rows; an error (a bug to report) becomes a flagged row, and the run goes on."""
        try:
            method(*args)
        except Exception as error:
            self.flagged += 1
            label = args[-2][0] if isinstance(args[-2], tuple) else str(args[-2])
            self.rows.append([method.__name__, label, np.dtype(args[-1]).name, "-", "-", "-",
                              f"error (!): {type(error).__name__}: {error}"[:160], "-"])


KERNEL_HEADERS = ["kernel", "shape", "dtype", "tinygen ms", "reference ms", "ratio", "max |diff|", "reference"]


def conv_references(cp):
    """The convolution references this machine has, best first; notes on the ones it lacks."""
    refs, notes = [], []
    try:
        refs.append(CupyxCudnnConv(cp))
    except Exception as error:
        notes.append(f"no cuDNN through CuPy {cp.__version__} ({type(error).__name__}: {error})")
    try:
        import torch
        refs.append(TorchConv(torch))
    except Exception as error:
        notes.append(f"no cuDNN through PyTorch ({type(error).__name__}: {error})")
    return refs + [ArrayConv(cp)], notes


def kernel_table(cp):
    """Run every kernel pair on the current CuPy device: (rows, flagged count, notes)."""
    from tinygen import cuda
    refs, notes = conv_references(cp)
    about = [ref.about for ref in refs] + ["CuPy expr: the LSTM equations as CuPy expressions, one kernel each"]
    print("references, in order of preference:" + "".join(f"\n  {line}" for line in about + notes), flush=True)

    def to_cupy(a):
        return a if isinstance(a, cp.ndarray) else cp.from_dlpack(a)
    bench = KernelBench(cp, cuda, cp.cuda.Device().synchronize, refs, to_cupy)
    rows = bench.run()
    return rows, bench.flagged, about + notes + bench.notes


# --- the model table --------------------------------------------------------------------

def build_for_digits(name, device):
    """(model, one training batch on ``device``, batch size): ``name`` at its defaults, as ``tinygen train``
    builds it for ``--data digits`` (the class's learning rate and run-length options, seed 0)."""
    from tinygen.data import DataLoader
    from tinygen.run_config import build_model, check_batch_size, model_info, new_config
    from tinygen.run_data import load_data
    info = model_info(name)
    given = dict(lr=None, steps=None, minutes=None, batch_size=None, seed=None, log_every=None)
    config, _ = new_config(info, given, "digits", {})
    data = load_data("digits", info, config["options"])
    tinygen.manual_seed(config["seed"])
    model = build_model(info, data.shape, config["options"], device)
    check_batch_size(model, config["batch_size"])
    loader = DataLoader(data.train, batch_size=config["batch_size"], shuffle=False, drop_last=True, device=device)
    return model, next(iter(loader)), config["batch_size"]


def timed_calls(fn, count, sync):
    """Median seconds of ``count`` single calls of ``fn``, each from an idle device to a drained one."""
    times = []
    for _ in range(count):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def model_row(name, device, steps, sync):
    model, batch, batch_size = build_for_digits(name, device)
    for _ in range(WARMUP_STEPS):   # kernels compiled, cuBLAS handles and memory pools made
        model.train_step(batch)
    step = timed_calls(lambda: model.train_step(batch), steps, sync)
    row = [name, str(batch_size), milliseconds(step)]
    if getattr(model, "translates", False):
        return row + ["-", "-"]   # image-to-image: nothing drawn from noise
    model.sample(SAMPLE_N)
    sample = timed_calls(lambda: model.sample(SAMPLE_N), max(1, min(3, steps)), sync)
    return row + [milliseconds(sample), f"{SAMPLE_N / sample:.0f}"]


MODEL_HEADERS = ["model", "batch", "ms/step", f"sample({SAMPLE_N}) ms", "samples/s"]


def model_table(names, device, steps, sync):
    """(rows, count of models that failed): a model that raises (a bug to report) gets a row saying so."""
    rows, failed = [], 0
    for name in names:
        print(f"  {name} ...", end=" ", flush=True)
        try:
            rows.append(model_row(name, device, steps, sync))
            print(f"{rows[-1][2]} ms/step", flush=True)
        except Exception as error:
            failed += 1
            traceback.print_exc()
            rows.append([name, "-", f"error (!): {type(error).__name__}: {error}"[:160], "-", "-"])
    return rows, failed


# --- the run ----------------------------------------------------------------------------

def markdown_table(rows, headers):
    def line(cells):   # a "|" inside a cell (max |diff|) is escaped, or it would split the cell
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(headers), "|" + "---|" * len(headers)] + [line(r) for r in rows])


def describe(device, cp):
    """One line each: the device, the library versions, the date."""
    lines = [f"date: {datetime.date.today().isoformat()}",
             f"numpy {np.__version__}, python {platform.python_version()}"]
    if cp is None:
        threads = os.environ.get("OMP_NUM_THREADS", "all")
        lines.insert(0, f"device: cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                        f"OMP_NUM_THREADS={threads})")
        return lines
    d = cp.cuda.Device()
    name = cp.cuda.runtime.getDeviceProperties(d.id)["name"]
    name = name.decode() if isinstance(name, bytes) else name

    def version(v):
        return f"{v // 1000}.{v % 1000 // 10}"
    lines.insert(0, f"device: {device} = {name} (compute capability {d.compute_capability})")
    lines.insert(1, f"CuPy {cp.__version__}, CUDA runtime {version(cp.cuda.runtime.runtimeGetVersion())}, "
                    f"driver supports CUDA {version(cp.cuda.runtime.driverGetVersion())}")
    return lines


def write_markdown(path, about, kernel_rows, kernel_notes, model_rows, steps):
    parts = [f"# benchmarks/gpu.py on {about[0].split(': ', 1)[1]}", "", *(f"- {line}" for line in about), ""]
    if kernel_rows is not None:
        parts += ["## Kernels: tinygen against the reference (ratio = tinygen / reference; target: within 2x "
                  "of cuDNN)", "", markdown_table(kernel_rows, KERNEL_HEADERS), ""]
        parts += [f"- {n}" for n in kernel_notes] + ([""] if kernel_notes else [])
    parts += [f"## Models: train_step on 8x8 digits at the default batch size (median of {steps} steps "
              f"after {WARMUP_STEPS} warm-up), sample({SAMPLE_N})", "", markdown_table(model_rows, MODEL_HEADERS), ""]
    with open(path, "w") as f:
        f.write("\n".join(parts))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (cpu: the model table alone)")
    parser.add_argument("--models", default=None, help="comma-separated model names (default: every registered)")
    parser.add_argument("--steps", type=int, default=20, help="timed train_step calls per model")
    parser.add_argument("--out", default=None, help="also write both tables as Markdown to this file")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    return args


def open_device(device):
    """(canonical device, cupy or None); a GPU that is not there is one line on stderr and exit status 2."""
    try:
        device = backend.normalize_device(device)
    except (RuntimeError, ValueError) as error:
        print(f"benchmarks/gpu.py: {error}", file=sys.stderr)
        raise SystemExit(2)
    if device == "cpu":
        return device, None
    import cupy as cp
    index = 0 if device == "cuda" else int(device[5:])
    if index >= cp.cuda.runtime.getDeviceCount():
        print(f"benchmarks/gpu.py: there is no {device}: CuPy sees {cp.cuda.runtime.getDeviceCount()} GPU(s)",
              file=sys.stderr)
        raise SystemExit(2)
    cp.cuda.Device(index).use()
    return device, cp


def main():
    args = parse_args()
    device, cp = open_device(args.device)
    names = args.models.split(",") if args.models else tinygen.models.registered()
    about = describe(device, cp)
    print("\n".join(about))
    kernel_rows, notes, flagged = None, [], 0
    if cp is None:
        print("\nkernel table skipped: tinygen's CUDA kernels need --device cuda")
    else:
        print("\nkernels: tinygen against the reference (ratio = tinygen / reference)", flush=True)
        kernel_rows, flagged, notes = kernel_table(cp)
        print_table(kernel_rows, KERNEL_HEADERS)
        for n in notes:
            print(f"  {n}")
    sync = (lambda: None) if cp is None else cp.cuda.Device().synchronize
    print(f"\nmodels on {device}: train_step at the default batch size, median of {args.steps} steps", flush=True)
    model_rows, failed = model_table(names, device, args.steps, sync)
    print_table(model_rows, MODEL_HEADERS)
    if args.out:
        write_markdown(args.out, about, kernel_rows, notes, model_rows, args.steps)
        print(f"\nwrote {args.out}")
    if flagged or failed:
        print(f"\n(!) {flagged} kernel case(s) disagree with their reference or failed, {failed} model(s) "
              f"failed", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
