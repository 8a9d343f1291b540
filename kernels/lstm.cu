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
// Arrays are float32, C-contiguous.

// 1 / (1 + e^-z): for z -> -inf, e^-z overflows to inf and the quotient is 0,
// the right limit, so no special case is needed.
__device__ __forceinline__ float sigmoid(float z)
{
    return 1.0f / (1.0f + expf(-z));
}

extern "C" __global__ void lstm_cell_forward(const float* __restrict__ pre,
                                             const float* __restrict__ c_prev,
                                             float* __restrict__ h, float* __restrict__ c,
                                             float* __restrict__ gates, int N, int H)
{
    const long long total = (long long)N * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long n = t / H;
        const int j = (int)(t % H);
        const float* p = pre + n * 4 * H;         // row n of the pre-activations
        float* a = gates + n * 4 * H;             // row n of the activated gates
        const float i = sigmoid(p[j]);
        const float f = sigmoid(p[H + j]);
        const float g = tanhf(p[2 * H + j]);
        const float o = sigmoid(p[3 * H + j]);
        a[j] = i;
        a[H + j] = f;
        a[2 * H + j] = g;
        a[3 * H + j] = o;
        const float ct = f * c_prev[t] + i * g;
        c[t] = ct;
        h[t] = o * tanhf(ct);
    }
}

extern "C" __global__ void lstm_cell_backward(const float* __restrict__ gates,
                                              const float* __restrict__ c_prev,
                                              const float* __restrict__ c,
                                              const float* __restrict__ dh,
                                              const float* __restrict__ dc,
                                              float* __restrict__ dpre,
                                              float* __restrict__ dc_prev, int N, int H)
{
    const long long total = (long long)N * H;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const long long n = t / H;
        const int j = (int)(t % H);
        const float* a = gates + n * 4 * H;
        float* d = dpre + n * 4 * H;
        const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        // tanh(c) is recomputed rather than stored: one tanhf is cheaper than
        // another (N, H) array written in forward and read back here.
        const float tc = tanhf(c[t]);
        const float dc_total = dc[t] + dh[t] * o * (1.0f - tc * tc);
        d[j] = dc_total * g * i * (1.0f - i);
        d[H + j] = dc_total * c_prev[t] * f * (1.0f - f);
        d[2 * H + j] = dc_total * i * (1.0f - g * g);
        d[3 * H + j] = dh[t] * tc * o * (1.0f - o);
        dc_prev[t] = dc_total * f;
    }
}
