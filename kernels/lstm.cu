// lstm.cu — one LSTM cell step on a GPU, forward and backward, fused.
//
// For a batch of N rows and H hidden units, the caller computes the gate
// pre-activations pre = x W_x + h_prev W_h + b, shape (N, 4H), in the order
// [i | f | g | o] (input gate, forget gate, candidate, output gate). Then, for
// every row n and unit j:
//
//     i = sigmoid(pre[n, j])          f = sigmoid(pre[n, H + j])
//     g = tanh(pre[n, 2H + j])        o = sigmoid(pre[n, 3H + j])
//     c[n, j] = f * c_prev[n, j] + i * g
//     h[n, j] = o * tanh(c[n, j])
//
// The forward kernel also stores the activated gates (N, 4H) = [i | f | g | o]
// for the backward pass. Given dh = dL/dh and dc = dL/dc (the gradient reaching
// c from the next time step), the backward kernel computes
//
//     dc_total = dc + dh * o * (1 - tanh(c)^2)     (c reaches L directly and through h)
//     di = dc_total * g * i (1 - i)                 sigmoid' = s (1 - s)
//     df = dc_total * c_prev * f (1 - f)
//     dg = dc_total * i * (1 - g^2)                 tanh' = 1 - tanh^2
//     do = dh * tanh(c) * o (1 - o)
//     dc_prev = dc_total * f
//
// and writes dpre = [di | df | dg | do] (N, 4H). Every (n, j) is independent:
// one thread per unit, a grid-stride loop over the N*H units, no shared memory.
// Fusing the ~15 elementwise operations into one kernel reads each input once
// instead of once per operation, which is what makes a long scan fast.
//
// Each kernel is a template over the element type T (float or double), the
// math in T's own precision (activations.cuh); the entry points at the end of
// the file instantiate both under the names tinygen/cuda.py launches
// (lstm_cell_forward_f32, lstm_cell_forward_f64, ...). Arrays are C-contiguous.
#include "activations.cuh"

template <typename T>
__device__ __forceinline__ void lstm_cell_forward(const T* __restrict__ pre, const T* __restrict__ c_prev,
                                                  T* __restrict__ h, T* __restrict__ c,
                                                  T* __restrict__ gates, int N, int H)
{
    const long long total = (long long)N * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long n = t / H;
        const int j = (int)(t % H);
        const T* p = pre + n * 4 * H;             // row n of the pre-activations
        T* a = gates + n * 4 * H;                 // row n of the activated gates
        const T i = sigmoid(p[j]);
        const T f = sigmoid(p[H + j]);
        const T g = tanh_of(p[2 * H + j]);
        const T o = sigmoid(p[3 * H + j]);
        a[j] = i;
        a[H + j] = f;
        a[2 * H + j] = g;
        a[3 * H + j] = o;
        const T ct = f * c_prev[t] + i * g;
        c[t] = ct;
        h[t] = o * tanh_of(ct);
    }
}

template <typename T>
__device__ __forceinline__ void lstm_cell_backward(const T* __restrict__ gates, const T* __restrict__ c_prev,
                                                   const T* __restrict__ c, const T* __restrict__ dh,
                                                   const T* __restrict__ dc, T* __restrict__ dpre,
                                                   T* __restrict__ dc_prev, int N, int H)
{
    const long long total = (long long)N * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long n = t / H;
        const int j = (int)(t % H);
        const T* a = gates + n * 4 * H;
        T* d = dpre + n * 4 * H;
        const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        // tanh(c) is recomputed rather than stored: one tanh is cheaper than
        // another (N, H) array written in forward and read back here.
        const T tc = tanh_of(c[t]);
        const T dc_total = dc[t] + dh[t] * o * (T(1) - tc * tc);
        d[j] = dc_total * g * i * (T(1) - i);
        d[H + j] = dc_total * c_prev[t] * f * (T(1) - f);
        d[2 * H + j] = dc_total * i * (T(1) - g * g);
        d[3 * H + j] = dh[t] * tc * o * (T(1) - o);
        dc_prev[t] = dc_total * f;
    }
}

// --- entry points: both kernels for float (_f32) and double (_f64) --------------------
//
// extern "C" keeps these names unmangled, so cupy.RawModule.get_function (and the
// emulator of the tests) find them as written; tinygen/cuda.py picks the suffix
// from the arrays' dtype (kernel_name).

extern "C" __global__ void lstm_cell_forward_f32(const float* __restrict__ pre,
                                                 const float* __restrict__ c_prev,
                                                 float* __restrict__ h, float* __restrict__ c,
                                                 float* __restrict__ gates, int N, int H)
{
    lstm_cell_forward(pre, c_prev, h, c, gates, N, H);
}

extern "C" __global__ void lstm_cell_forward_f64(const double* __restrict__ pre,
                                                 const double* __restrict__ c_prev,
                                                 double* __restrict__ h, double* __restrict__ c,
                                                 double* __restrict__ gates, int N, int H)
{
    lstm_cell_forward(pre, c_prev, h, c, gates, N, H);
}

extern "C" __global__ void lstm_cell_backward_f32(const float* __restrict__ gates,
                                                  const float* __restrict__ c_prev, const float* __restrict__ c,
                                                  const float* __restrict__ dh, const float* __restrict__ dc,
                                                  float* __restrict__ dpre, float* __restrict__ dc_prev, int N, int H)
{
    lstm_cell_backward(gates, c_prev, c, dh, dc, dpre, dc_prev, N, H);
}

extern "C" __global__ void lstm_cell_backward_f64(const double* __restrict__ gates,
                                                  const double* __restrict__ c_prev, const double* __restrict__ c,
                                                  const double* __restrict__ dh, const double* __restrict__ dc,
                                                  double* __restrict__ dpre, double* __restrict__ dc_prev, int N, int H)
{
    lstm_cell_backward(gates, c_prev, c, dh, dc, dpre, dc_prev, N, H);
}
