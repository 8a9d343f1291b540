// pixelrnn.cu — one step of the PixelRNN scans (Row LSTM, Diagonal LSTM) on a GPU, fused.
//
// Both scans are LSTMs whose state-to-state map is a 1-D convolution along a
// line of S positions: the W pixels of a row (Row LSTM, scanned over rows,
// kernel K = 3) or the R pixels of a column of the skewed map (Diagonal LSTM,
// scanned over columns, K = 2). With a left zero padding of `pad` positions
// (1 for both), step t's pre-activations are
//
//     pre_t[n, s, :] = x_t[n, s, :] + sum_k w_k h_{t-1}[n, s + k - pad, :]     (0 outside 0..S-1)
//
// where w_k = w_ss[:, :, k] (4H, H). The caller (tinygen/functional/recurrent.py)
// computes every product w_k h_{t-1}[s'] with ONE matrix product through cuBLAS,
//
//     proj[n, s', k, :] = w_k h_{t-1}[n, s', :]          proj: (N, S, K, 4H)
//
// and pixelrnn_step_forward does the rest of the step in one pass: it gathers
// the K shifted taps, pre = x_t + sum_k proj[n, s + k - pad, k, :], then the
// LSTM cell in the gate order [i | f | g | o] of lstm.cu:
//
//     i, f, o = sigmoid(pre_i, pre_f, pre_o)     g = tanh(pre_g)
//     c = f c_prev + i g                          h = o tanh(c)
//
// Backward (backpropagation through time). h_t reaches the loss through the
// output (dy_t) and through pre_{t+1}: h_t[s'] enters pre_{t+1}[s' - k + pad]
// through w_k. With q[n, s'', k, :] = w_k^T dpre_{t+1}[n, s'', :] (again one
// matrix product by the caller, q: (N, S, K, H)),
//
//     dh_t[n, s, :] = dy_t[n, s, :] + sum_k q[n, s - k + pad, k, :]
//
// and pixelrnn_step_backward gathers these taps, then runs the cell backward
// of lstm.cu: dpre_t = [di | df | dg | do] and dc_{t-1} = dc_total * f. The
// weight gradient dw_k = sum over t, n, s of dpre_t[s] h_{t-1}[s + k - pad]^T
// is one matrix product after the scan, by the caller.
//
// The first step has h_{-1} = 0 (the last step of backward has no dpre_{t+1}):
// the caller passes K = 0 taps, and proj / q is not read. (A NULL pointer is
// not an option: CuPy passes None as 0xffffffff, not as NULL.)
//
// In place: `gates` holds the pre-activations x_t on entry and the activated
// gates on exit (the scan keeps one (T, N, S, 4H) buffer); `dc` holds
// dL/dc_t on entry and dL/dc_{t-1} on exit. Each thread reads its own entries
// before it writes them, so no other thread can see a half-updated value.
//
// One thread per (n, s, j), j the hidden unit (fastest), so neighbouring
// threads read neighbouring addresses of every array. No shared memory.
// Each kernel is a template over the element type T (float or double), the
// math in T's own precision (activations.cuh); the entry points at the end of
// the file instantiate both under the names tinygen/cuda.py launches
// (pixelrnn_step_forward_f32, pixelrnn_step_forward_f64, ...). Arrays are C-contiguous.
#include "activations.cuh"

template <typename T>
__device__ __forceinline__ void pixelrnn_step_forward(T* __restrict__ gates,        // (N, S, 4H) in: x_t, out: gates
                                                      const T* __restrict__ proj,   // (N, S, K, 4H)
                                                      const T* __restrict__ c_prev, // (N, S, H)
                                                      T* __restrict__ h,            // (N, S, H)
                                                      T* __restrict__ c,            // (N, S, H)
                                                      int N, int S, int H, int K, int pad)
{
    const long long total = (long long)N * S * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    const int H4 = 4 * H;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int j = (int)(t % H);
        const long long ns = t / H;                 // n * S + s
        const int s = (int)(ns % S);
        T* a = gates + ns * H4;                     // position (n, s): its 4H pre-activations
        T ai = a[j], af = a[H + j], ag = a[2 * H + j], ao = a[3 * H + j];
        // The K taps, added in the order k = 0, 1, ... (the tests repeat this order).
        for (int k = 0; k < K; ++k) {
            const int src = s + k - pad;            // h_{t-1}[src] feeds pre_t[s] through w_k
            if (src < 0 || src >= S) continue;      // zero padding
            const T* p = proj + ((ns + (src - s)) * K + k) * H4;
            ai += p[j];
            af += p[H + j];
            ag += p[2 * H + j];
            ao += p[3 * H + j];
        }
        const T i = sigmoid(ai), f = sigmoid(af), g = tanh_of(ag), o = sigmoid(ao);
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
__device__ __forceinline__ void pixelrnn_step_backward(const T* __restrict__ gates,  // (N, S, 4H) activated
                                                       const T* __restrict__ c_prev, // (N, S, H)
                                                       const T* __restrict__ c,      // (N, S, H)
                                                       const T* __restrict__ dy,     // (N, S, H) from the output
                                                       const T* __restrict__ q,      // (N, S, K, H)
                                                       T* __restrict__ dc,           // (N, S, H) dc_t in, dc_{t-1} out
                                                       T* __restrict__ dpre,         // (N, S, 4H)
                                                       int N, int S, int H, int K, int pad)
{
    const long long total = (long long)N * S * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    const int H4 = 4 * H;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int j = (int)(t % H);
        const long long ns = t / H;
        const int s = (int)(ns % S);
        T dh = dy[t];
        for (int k = 0; k < K; ++k) {
            const int dst = s - k + pad;            // h_t[s] fed pre_{t+1}[dst] through w_k
            if (dst < 0 || dst >= S) continue;
            dh += q[((ns + (dst - s)) * K + k) * H + j];
        }
        const T* a = gates + ns * H4;
        T* d = dpre + ns * H4;
        const T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        const T tc = tanh_of(c[t]);                 // recomputed: cheaper than storing tanh(c)
        const T dc_total = dc[t] + dh * o * (T(1) - tc * tc);
        d[j] = dc_total * g * i * (T(1) - i);
        d[H + j] = dc_total * c_prev[t] * f * (T(1) - f);
        d[2 * H + j] = dc_total * i * (T(1) - g * g);
        d[3 * H + j] = dh * tc * o * (T(1) - o);
        dc[t] = dc_total * f;
    }
}

// --- entry points: both kernels for float (_f32) and double (_f64) --------------------
//
// extern "C" keeps these names unmangled, so cupy.RawModule.get_function (and the
// emulator of the tests) find them as written; tinygen/cuda.py picks the suffix
// from the arrays' dtype (kernel_name).

extern "C" __global__ void pixelrnn_step_forward_f32(float* __restrict__ gates, const float* __restrict__ proj,
                                                     const float* __restrict__ c_prev, float* __restrict__ h,
                                                     float* __restrict__ c, int N, int S, int H, int K, int pad)
{
    pixelrnn_step_forward(gates, proj, c_prev, h, c, N, S, H, K, pad);
}

extern "C" __global__ void pixelrnn_step_forward_f64(double* __restrict__ gates, const double* __restrict__ proj,
                                                     const double* __restrict__ c_prev, double* __restrict__ h,
                                                     double* __restrict__ c, int N, int S, int H, int K, int pad)
{
    pixelrnn_step_forward(gates, proj, c_prev, h, c, N, S, H, K, pad);
}

extern "C" __global__ void pixelrnn_step_backward_f32(const float* __restrict__ gates,
                                                      const float* __restrict__ c_prev,
                                                      const float* __restrict__ c, const float* __restrict__ dy,
                                                      const float* __restrict__ q, float* __restrict__ dc,
                                                      float* __restrict__ dpre, int N, int S, int H, int K, int pad)
{
    pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, dpre, N, S, H, K, pad);
}

extern "C" __global__ void pixelrnn_step_backward_f64(const double* __restrict__ gates,
                                                      const double* __restrict__ c_prev,
                                                      const double* __restrict__ c, const double* __restrict__ dy,
                                                      const double* __restrict__ q, double* __restrict__ dc,
                                                      double* __restrict__ dpre, int N, int S, int H, int K, int pad)
{
    pixelrnn_step_backward(gates, c_prev, c, dy, q, dc, dpre, N, S, H, K, pad);
}
