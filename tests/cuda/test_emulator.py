"""The SIMT emulator itself, on tiny kernels: does it catch what it claims to catch?

Each kernel below is a textbook pattern or a textbook bug. A correct kernel
must give the right answer in every thread order; a kernel with a missing
barrier must give a wrong (or NaN) answer in at least one order; misuse a GPU
would hang on or get silently wrong must raise a clear error.
"""
import numpy as np
import pytest

import emulator
from emulator import LaunchError, NotEmulated

pytestmark = pytest.mark.skipif(not emulator.available(), reason="the CUDA emulator needs Linux and g++")

ORDERS = [("forward", 0), ("reverse", 0), ("random", 1), ("random", 2), ("random", 3)]

SOURCE = r"""
// Block sum: the classic shared-memory tree reduction (blockDim.x a power of 2, <= 256).
extern "C" __global__ void block_sum(const float* x, float* out, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// The same without the barrier after the loads: the first additions read unwritten entries.
extern "C" __global__ void block_sum_no_load_barrier(const float* x, float* out, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

// The same without the barrier inside the loop: a level reads the previous level too early.
extern "C" __global__ void block_sum_no_loop_barrier(const float* x, float* out, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2)
        if (t < stride) s[t] += s[t + stride];
    __syncthreads();
    if (t == 0) out[blockIdx.x] = s[0];
}

// Dynamic shared memory: the size comes from the launch.
extern "C" __global__ void block_sum_dynamic(const float* x, float* out, int n)
{
    extern __shared__ float buf[];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) buf[t] += buf[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}

// Reads shared memory nobody wrote.
extern "C" __global__ void read_unwritten(float* out, int* as_int)
{
    __shared__ float s[64];
    __shared__ int k[64];
    out[threadIdx.x] = s[threadIdx.x];
    as_int[threadIdx.x] = k[threadIdx.x];
}

extern "C" __global__ void read_unwritten_dynamic(float* out)
{
    extern __shared__ float dyn[];
    out[threadIdx.x] = dyn[threadIdx.x];
}

// Block 0 writes its shared memory; the others must not see block 0's values.
extern "C" __global__ void shared_is_per_block(float* out)
{
    __shared__ float s[32];
    if (blockIdx.x == 0) s[threadIdx.x] = 1.0f;
    __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
}

// The bug: out-of-range threads return before the barrier the others wait at.
extern "C" __global__ void early_return(const float* x, float* out, int n)
{
    __shared__ float s[64];
    const int t = threadIdx.x;
    if (t >= n) return;
    s[t] = x[t];
    __syncthreads();
    out[t] = s[(t + 1) % n];
}

// The bug: two branches, two different barriers.
extern "C" __global__ void divergent_barriers(float* out)
{
    if (threadIdx.x < 4) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    out[threadIdx.x] = 1.0f;
}

// Many threads add into one float and into a histogram.
extern "C" __global__ void atomic_count(float* total, int* histogram, const int* bins, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        atomicAdd(total, 1.0f);
        atomicAdd(&histogram[bins[i]], 1);
    }
}

// Warp sums: lane 0 gets its warp's sum (down), every lane gets it (xor butterfly).
extern "C" __global__ void warp_sum_down(const float* x, float* out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int offset = warpSize / 2; offset > 0; offset /= 2)
        v += __shfl_down_sync(0xffffffffu, v, offset);
    if (threadIdx.x % warpSize == 0) out[i / warpSize] = v;
}

extern "C" __global__ void warp_sum_xor(const float* x, float* out)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int mask = warpSize / 2; mask > 0; mask /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, mask);
    out[i] = v;
}

// Block sum from warp sums: shuffles, then shared memory across warps.
extern "C" __global__ void block_sum_warps(const float* x, float* out, int n)
{
    __shared__ float warp_sums[32];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    float v = i < n ? x[i] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (t % 32 == 0) warp_sums[t / 32] = v;
    __syncthreads();
    if (t < 32) {
        v = t < (int)(blockDim.x / 32) ? warp_sums[t] : 0.0f;
        for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
        if (t == 0) out[blockIdx.x] = v;
    }
}

// Broadcast, segments of 8 lanes, shfl_up (an inclusive scan), votes.
extern "C" __global__ void warp_misc(const int* x, int* bcast, int* seg, int* scan, unsigned* ballot, int* any_all)
{
    const int t = threadIdx.x;
    const int v = x[t];
    bcast[t] = __shfl_sync(0xffffffffu, v, 5);
    seg[t] = __shfl_down_sync(0xffffffffu, v, 1, 8);
    int s = v;
    for (int d = 1; d < 32; d *= 2) {
        const int u = __shfl_up_sync(0xffffffffu, s, d);
        if (t % 32 >= d) s += u;
    }
    scan[t] = s;
    ballot[t] = __ballot_sync(0xffffffffu, v > 0);
    any_all[t] = (__any_sync(0xffffffffu, v > 0) ? 1 : 0) + (__all_sync(0xffffffffu, v > 0) ? 2 : 0);
    __syncwarp();
}

extern "C" __global__ void count_positive(const float* x, int* out)
{
    const int c = __syncthreads_count(x[threadIdx.x] > 0.0f);
    if (threadIdx.x == 0) out[0] = c;
}

// Lane 0 waits for lane 1 at a shuffle while lane 1 waits at __syncthreads: a deadlock.
extern "C" __global__ void shuffle_deadlock(float* out)
{
    float v = out[threadIdx.x];
    if (threadIdx.x == 0) v = __shfl_sync(0x3u, v, 1);
    __syncthreads();
    out[threadIdx.x] = v;
}

extern "C" __global__ void lane_not_in_mask(float* out)
{
    out[threadIdx.x] = __shfl_sync(0x1u, out[threadIdx.x], 0);
}

extern "C" __global__ void writes_past_the_end(float* out, int n)
{
    out[threadIdx.x + n] = 1.0f;
}

extern "C" __global__ void asserts(const int* x)
{
    assert(x[threadIdx.x] >= 0);
}

// 2-D blocks and grids: the built-in variables and thread numbering.
extern "C" __global__ void coordinates(int* out)
{
    const int bx = blockIdx.x, by = blockIdx.y;
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row = by * blockDim.y + ty, col = bx * blockDim.x + tx;
    out[row * (gridDim.x * blockDim.x) + col] = 1000 * row + col;
}

extern "C" __global__ void scalars(double* out, double a, float b, long long c, unsigned d, bool e)
{
    out[0] = a;
    out[1] = b;
    out[2] = (double)c;
    out[3] = d;
    out[4] = e ? 1.0 : 0.0;
}
"""


@pytest.fixture(scope="module")
def module():
    return emulator.Module(code=SOURCE, name="emulator_tests.cu")


def sums(module, name, x, block, shared_mem=0, **launch):
    n = x.size
    grid = -(-n // block)
    out = np.zeros(grid, np.float32)
    module.get_function(name)(grid, block, (x, out, np.int32(n)), shared_mem=shared_mem, **launch)
    return out


def expected_sums(x, block):
    pad = np.zeros(-(-x.size // block) * block)
    pad[:x.size] = x
    return pad.reshape(-1, block).sum(axis=1)


X = np.random.default_rng(0).integers(-8, 9, size=300).astype(np.float32)   # sums exact in float32


@pytest.mark.parametrize("order, seed", ORDERS)
@pytest.mark.parametrize("name, shared_mem", [("block_sum", 0), ("block_sum_dynamic", 256 * 4),
                                              ("block_sum_warps", 0)])
def test_correct_reductions_are_right_in_every_order(module, name, shared_mem, order, seed):
    got = sums(module, name, X, 256, shared_mem=shared_mem, order=order, seed=seed)
    np.testing.assert_array_equal(got, expected_sums(X, 256))


@pytest.mark.parametrize("name", ["block_sum_no_load_barrier", "block_sum_no_loop_barrier"])
def test_a_missing_barrier_gives_a_wrong_result_in_some_order(module, name):
    want = expected_sums(X, 256)
    results = {f"{order}/{seed}": sums(module, name, X, 256, order=order, seed=seed) for order, seed in ORDERS}
    wrong = [key for key, got in results.items() if not np.array_equal(got, want)]
    assert wrong, f"{name}: every thread order gave the right sum, so the emulator missed the race"
    # The forward order (thread 0 first) reads entries before their owners write them.
    assert "forward/0" in wrong


def test_missing_load_barrier_reads_the_nan_fill(module):
    got = sums(module, "block_sum_no_load_barrier", X, 256, order="forward")
    assert np.isnan(got).all()


def test_unwritten_shared_memory_reads_as_nan(module):
    out = np.zeros(64, np.float32)
    as_int = np.zeros(64, np.int32)
    module.get_function("read_unwritten")(1, 64, (out, as_int))
    assert np.isnan(out).all()
    assert (as_int == -1).all()   # all bits set
    dyn = np.zeros(64, np.float32)
    module.get_function("read_unwritten_dynamic")(1, 64, (dyn,), shared_mem=64 * 4)
    assert np.isnan(dyn).all()


def test_shared_memory_is_refilled_for_every_block(module):
    out = np.zeros(3 * 32, np.float32)
    module.get_function("shared_is_per_block")(3, 32, (out,))
    assert (out[:32] == 1).all()
    assert np.isnan(out[32:]).all()


def test_returning_before_a_barrier_others_wait_at_raises(module):
    x = np.arange(64, dtype=np.float32)
    out = np.zeros(64, np.float32)
    with pytest.raises(LaunchError) as error:
        module.get_function("early_return")(1, 64, (x, out, np.int32(40)))
    message = str(error.value)
    assert "early_return" in message and "block (0,0,0)" in message
    assert "24 threads from (40,0,0) to (63,0,0) returned" in message
    assert "waiting at __syncthreads() at emulator_tests.cu:" in message
    # With every thread in range the same kernel is fine.
    module.get_function("early_return")(1, 40, (x, out, np.int32(40)))
    np.testing.assert_array_equal(out[:40], np.roll(x[:40], -1))


def test_threads_at_different_barriers_raise(module):
    with pytest.raises(LaunchError, match=r"wait at different barriers"):
        module.get_function("divergent_barriers")(1, 8, (np.zeros(8, np.float32),))


@pytest.mark.parametrize("order, seed", ORDERS[:3])
def test_atomic_add_from_many_threads(module, order, seed):
    n = 1000
    bins = np.random.default_rng(1).integers(0, 7, size=n).astype(np.int32)
    total = np.zeros(1, np.float32)
    histogram = np.zeros(7, np.int32)
    module.get_function("atomic_count")(4, 256, (total, histogram, bins, np.int32(n)), order=order, seed=seed)
    assert total[0] == n
    np.testing.assert_array_equal(histogram, np.bincount(bins, minlength=7))


@pytest.mark.parametrize("order, seed", ORDERS)
def test_warp_shuffle_reductions(module, order, seed):
    x = np.random.default_rng(2).integers(-5, 6, size=128).astype(np.float32)
    out = np.zeros(4, np.float32)
    module.get_function("warp_sum_down")(2, 64, (x, out), order=order, seed=seed)
    np.testing.assert_array_equal(out, x.reshape(4, 32).sum(axis=1))
    everyone = np.zeros(128, np.float32)
    module.get_function("warp_sum_xor")(2, 64, (x, everyone), order=order, seed=seed)
    np.testing.assert_array_equal(everyone, np.repeat(x.reshape(4, 32).sum(axis=1), 32))


def test_warp_shuffle_variants_and_votes(module):
    x = np.random.default_rng(3).integers(-3, 4, size=64).astype(np.int32)
    x[32:] = np.abs(x[32:]) + 1            # warp 1: all positive
    outs = [np.zeros(64, np.int32) for _ in range(3)] + [np.zeros(64, np.uint32), np.zeros(64, np.int32)]
    module.get_function("warp_misc")(1, 64, (x, *outs), order="random", seed=7)
    bcast, seg, scan, ballot, any_all = outs
    lanes = np.arange(64)
    np.testing.assert_array_equal(bcast, x[lanes // 32 * 32 + 5])
    # Segments of 8: the last lane of each segment keeps its own value.
    np.testing.assert_array_equal(seg, np.where(lanes % 8 == 7, x, x[np.minimum(lanes + 1, 63)]))
    np.testing.assert_array_equal(scan, np.cumsum(x.reshape(2, 32), axis=1).reshape(-1))
    bits = [sum(1 << k for k in range(32) if x[32 * w + k] > 0) for w in range(2)]
    np.testing.assert_array_equal(ballot, np.repeat(np.array(bits, np.uint32), 32))
    assert (any_all[32:] == 3).all()       # warp 1: any and all
    assert (any_all[:32] == (1 if (x[:32] > 0).any() else 0) + (2 if (x[:32] > 0).all() else 0)).all()


def test_syncthreads_count(module):
    x = np.random.default_rng(4).standard_normal(96).astype(np.float32)
    out = np.zeros(1, np.int32)
    module.get_function("count_positive")(1, 96, (x, out), order="reverse")
    assert out[0] == (x > 0).sum()


def test_a_deadlock_is_reported_not_hung(module):
    with pytest.raises(LaunchError, match=r"deadlock.*__shfl_sync at emulator_tests.cu:\d+ \(mask 0x00000003\): thread \(0,0,0\)"):
        module.get_function("shuffle_deadlock")(1, 32, (np.zeros(32, np.float32),))


def test_a_lane_missing_from_its_own_mask_raises(module):
    with pytest.raises(LaunchError, match=r"lane 1, which is not in its own mask 0x00000001"):
        module.get_function("lane_not_in_mask")(1, 2, (np.zeros(2, np.float32),))


def test_writing_past_an_array_is_reported(module):
    out = np.zeros(8, np.float32)
    with pytest.raises(LaunchError, match=r"wrote past the end of argument out \(float32 array of shape \(8,\)\)"):
        module.get_function("writes_past_the_end")(1, 8, (out, np.int32(4)))


def test_a_failed_assert_raises_instead_of_aborting(module):
    with pytest.raises(LaunchError, match=r"thread \(2,0,0\).*assert\(x\[threadIdx.x\] >= 0\) failed"):
        module.get_function("asserts")(1, 4, (np.array([0, 1, -1, 2], np.int32),))


def test_two_dimensional_grids_and_blocks(module):
    out = np.zeros((2 * 4, 3 * 8), np.int32)        # grid (3, 2) of blocks (8, 4)
    module.get_function("coordinates")((3, 2), (8, 4), (out,), order="random", seed=5)
    rows, cols = np.indices(out.shape)
    np.testing.assert_array_equal(out, 1000 * rows + cols)


def test_scalar_arguments_take_the_declared_types(module):
    out = np.zeros(5, np.float64)
    module.get_function("scalars")(1, 1, (out, 0.1, 0.1, -2**40, 2**32 - 1, True))
    np.testing.assert_array_equal(out, [0.1, np.float32(0.1), -2**40, 2**32 - 1, 1.0])


def test_arguments_are_checked_against_the_signature(module):
    kernel = module.get_function("block_sum")
    x, out = np.zeros(4, np.float32), np.zeros(1, np.float32)
    with pytest.raises(LaunchError, match=r"argument x points to float32, got a float64 array"):
        kernel(1, 4, (x.astype(np.float64), out, np.int32(4)))
    with pytest.raises(LaunchError, match=r"takes 3 arguments \(x, out, n\), got 2"):
        kernel(1, 4, (x, out))
    with pytest.raises(LaunchError, match=r"does not fit in int32"):
        kernel(1, 4, (x, out, 2**31))
    with pytest.raises(LaunchError, match=r"must be C-contiguous"):
        kernel(1, 4, (np.zeros(8, np.float32)[::2], out, np.int32(4)))
    with pytest.raises(LaunchError, match=r"more than 1024 threads"):
        kernel(1, 2048, (x, out, np.int32(4)))


@pytest.mark.parametrize("snippet, refused", [
    ('asm("membar.gl;");', "inline assembly"),
    ("asm volatile(\"\" ::: \"memory\");", "inline assembly"),
    ("namespace cg = cooperative_groups;", "cooperative groups"),
    ("__constant__ float table[4];", "__constant__"),
    ("float y = __shfl(x, 0);", "without _sync were removed"),
    ("#include <cuda_fp16.h>", "headers are not available"),
])
def test_unsupported_features_are_refused_before_compiling(snippet, refused):
    source = f'extern "C" __global__ void k(float* x)\n{{\n    {snippet}\n}}\n'
    with pytest.raises(NotEmulated, match=refused) as error:
        emulator.Module(code=source, name="refused.cu")
    assert "refused.cu:3" in str(error.value)


def test_features_named_only_in_comments_are_not_refused():
    source = ('// asm( and cooperative_groups are only mentioned here\n'
              'extern "C" __global__ void k(float* x) { x[threadIdx.x] = 2.0f; }\n')
    x = np.zeros(4, np.float32)
    emulator.Module(code=source, name="comments.cu").get_function("k")(1, 4, (x,))
    assert (x == 2).all()


def test_compile_errors_show_the_compiler_message():
    with pytest.raises(emulator.CompileError, match=r"broken.cu:1.*undeclared_thing"):
        emulator.Module(code='extern "C" __global__ void k(float* x) { x[0] = undeclared_thing; }',
                        name="broken.cu")
