// conv2d.cu — the CUDA kernels behind tinygen's convolution on a GPU.
//
// A convolution becomes a matrix product once every receptive field is copied
// out as a column ("im2col"). For an input x of shape (N, C, H, W), a kernel of
// size (kh, kw), stride (sh, sw) and zero padding (ph, pw):
//
//     Ho = (H + 2 ph - kh) / sh + 1          Wo = (W + 2 pw - kw) / sw + 1
//     L  = Ho * Wo                            R  = C * kh * kw
//
//     cols[n, r, l] = x[n, c, oh*sh - ph + i, ow*sw - pw + j]   (0 outside x)
//         with  r = c*kh*kw + i*kw + j   and   l = oh*Wo + ow
//
// so cols has shape (N, R, L), and a convolution with weight w (O, C, kh, kw)
// is y[n] = w.reshape(O, R) @ cols[n]. The gradients are
//
//     dx    = col2im(w.reshape(O, R)^T @ dy[n])      (col2im: the adjoint of im2col)
//     dw    = sum_n dy[n] @ cols[n]^T                 (conv2d_grad_weight below)
//
// col2im sums, for each input pixel, every column entry that im2col copied it
// to: <im2col(x), y> = <x, col2im(y)> for all x, y. It is written as a gather
// (one thread per input pixel, reading all the entries that map to it) rather
// than a scatter (one thread per column entry, atomicAdd into x): no atomics,
// and the sum is taken in the same order on every run, so results are
// bit-for-bit reproducible.
//
// Each kernel is a template over the element type T (float or double), written
// once; the entry points at the end of the file instantiate it for both under
// the names tinygen/cuda.py launches (im2col_f32, im2col_f64, ...), so a float64
// array is processed in double precision all the way. Arrays are C-contiguous.
// Kernels use grid-stride loops, so any 1-D launch covers any size;
// tinygen/cuda.py picks the launch.

// Output length of a window of size k swept with stride s over n + 2p positions.
__device__ __forceinline__ int out_size(int n, int k, int s, int p)
{
    return (n + 2 * p - k) / s + 1;
}

// One thread per (n, c, oh, ow): it copies the kh*kw window whose top-left
// corner is (oh*sh - ph, ow*sw - pw) into column l = oh*Wo + ow, rows
// c*kh*kw ... c*kh*kw + kh*kw - 1. Neighbouring threads hold neighbouring l, so
// every store to cols is coalesced.
template <typename T>
__device__ __forceinline__ void im2col(const T* __restrict__ x, T* __restrict__ cols,
                                       int N, int C, int H, int W,
                                       int kh, int kw, int sh, int sw, int ph, int pw)
{
    const int Ho = out_size(H, kh, sh, ph);
    const int Wo = out_size(W, kw, sw, pw);
    const long long L = (long long)Ho * Wo;
    const long long total = (long long)N * C * L;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int l = (int)(t % L);
        const long long nc = t / L;                // n*C + c: image n, channel c
        const int oh = l / Wo, ow = l % Wo;
        const int h0 = oh * sh - ph, w0 = ow * sw - pw;
        const T* x_nc = x + nc * H * W;
        // Row c*kh*kw of image n is row (n*C + c)*kh*kw = nc*kh*kw of the (N*R, L) matrix.
        T* col = cols + nc * kh * kw * L + l;
        for (int i = 0; i < kh; ++i) {
            const int h = h0 + i;
            for (int j = 0; j < kw; ++j) {
                const int w = w0 + j;
                T v = T(0);                        // zero padding
                if (h >= 0 && h < H && w >= 0 && w < W) v = x_nc[h * W + w];
                col[(i * kw + j) * L] = v;
            }
        }
    }
}

// One thread per input pixel x[n, c, h, w]. In padded coordinates (hp, wp) =
// (h + ph, w + pw), the window at output row oh covers rows oh*sh ... oh*sh + kh - 1,
// so the pixel sits at kernel row i = hp - oh*sh of every window with
//     0 <= i < kh   <=>   ceil((hp - kh + 1) / sh) <= oh <= floor(hp / sh),
// intersected with 0 <= oh < Ho; the same holds for columns. The thread sums
// cols[n, c*kh*kw + i*kw + j, oh*Wo + ow] over those (oh, ow) and writes x once.
template <typename T>
__device__ __forceinline__ void col2im(const T* __restrict__ cols, T* __restrict__ x,
                                       int N, int C, int H, int W,
                                       int kh, int kw, int sh, int sw, int ph, int pw)
{
    const int Ho = out_size(H, kh, sh, ph);
    const int Wo = out_size(W, kw, sw, pw);
    const long long L = (long long)Ho * Wo;
    const long long total = (long long)N * C * H * W;
    const long long step = (long long)gridDim.x * blockDim.x;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        const int w = (int)(t % W);
        const int h = (int)((t / W) % H);
        const long long nc = t / ((long long)H * W);
        const int hp = h + ph, wp = w + pw;
        // ceil((hp - kh + 1) / sh) for a positive numerator is (hp - kh) / sh + 1.
        const int oh_lo = hp < kh ? 0 : (hp - kh) / sh + 1;
        const int ow_lo = wp < kw ? 0 : (wp - kw) / sw + 1;
        const int oh_hi = min(hp / sh, Ho - 1);
        const int ow_hi = min(wp / sw, Wo - 1);
        const T* col = cols + nc * kh * kw * L;
        T sum = T(0);
        for (int oh = oh_lo; oh <= oh_hi; ++oh) {
            const int i = hp - oh * sh;
            for (int ow = ow_lo; ow <= ow_hi; ++ow) {
                const int j = wp - ow * sw;
                sum += col[(i * kw + j) * L + oh * Wo + ow];
            }
        }
        x[t] = sum;
    }
}

// The weight gradient as a tiled matrix product, summed over the batch:
//
//     partial[s, o, r] = sum over n = s, s + S, s + 2S, ... < N of
//                        sum_l dy[n, o, l] * cols[n, r, l]          (S = gridDim.z)
//     dw[o, r]         = sum_s partial[s, o, r]                      (done by the caller)
//
// dy is (N, O, L), cols is (N, R, L). A block of TILE x TILE threads owns one
// TILE x TILE tile of dw: thread (tx, ty) accumulates dw[o0 + ty, r0 + tx]. The
// shared L axis is walked TILE entries at a time; each step the block loads a
// TILE x TILE slice of dy and of cols into shared memory (each thread one entry
// of each), waits for all loads, then every thread reads TILE entries of each
// slice from fast shared memory instead of global memory.
//
// The batch is split over blockIdx.z so that a small dw (few tiles) still gives
// the GPU enough blocks; each split writes its own partial sum and the caller
// adds them up, so there are no atomics and the result does not depend on
// scheduling. Launch with block = (TILE, TILE, 1) and
// grid = (ceil(R / TILE), ceil(O / TILE), S).
constexpr int TILE = 16;   // tinygen/cuda.py launches blocks of TILE x TILE threads

template <typename T>
__device__ __forceinline__ void conv2d_grad_weight(const T* __restrict__ dy,
                                                   const T* __restrict__ cols,
                                                   T* __restrict__ partial,
                                                   int N, int O, int R, int L)
{
    // [TILE + 1]: the inner loop reads cols_tile[tx][k] for 16 different tx at
    // once; with rows of 17 entries those land in 16 different shared-memory
    // banks instead of two (rows of 16 floats put every other row in the same
    // bank). A double spans two 4-byte banks, and rows of 17 doubles start 34
    // banks apart, so the 16 reads again cover all 32 banks once.
    __shared__ T dy_tile[TILE][TILE + 1];     // dy[n, o0 + a, l0 + b] at [a][b]
    __shared__ T cols_tile[TILE][TILE + 1];   // cols[n, r0 + a, l0 + b] at [a][b]

    const int tx = threadIdx.x, ty = threadIdx.y;
    const int o0 = blockIdx.y * TILE, r0 = blockIdx.x * TILE;
    T acc = T(0);
    for (int n = blockIdx.z; n < N; n += gridDim.z) {
        const T* dy_n = dy + (long long)n * O * L;
        const T* cols_n = cols + (long long)n * R * L;
        for (int l0 = 0; l0 < L; l0 += TILE) {
            // Thread (tx, ty) loads entry [ty][tx] of both slices; neighbouring
            // tx read neighbouring addresses, so the loads are coalesced. Entries
            // past the edges are zeros, which add nothing to acc.
            const int l = l0 + tx;
            dy_tile[ty][tx] = (o0 + ty < O && l < L) ? dy_n[(long long)(o0 + ty) * L + l] : T(0);
            cols_tile[ty][tx] = (r0 + ty < R && l < L) ? cols_n[(long long)(r0 + ty) * L + l] : T(0);
            __syncthreads();   // both slices are complete before anyone reads them
            for (int k = 0; k < TILE; ++k)
                acc += dy_tile[ty][k] * cols_tile[tx][k];
            __syncthreads();   // everyone has finished reading before the next load overwrites
        }
    }
    // No early return above: every thread of the block must reach every
    // __syncthreads(), including threads whose (o, r) falls outside dw.
    const int o = o0 + ty, r = r0 + tx;
    if (o < O && r < R)
        partial[((long long)blockIdx.z * O + o) * R + r] = acc;
}

// --- entry points: every kernel above for float (_f32) and double (_f64) ------------
//
// extern "C" keeps these names unmangled, so cupy.RawModule.get_function (and the
// emulator of the tests) find them as written; tinygen/cuda.py picks the suffix
// from the arrays' dtype (kernel_name).

extern "C" __global__ void im2col_f32(const float* __restrict__ x, float* __restrict__ cols,
                                      int N, int C, int H, int W,
                                      int kh, int kw, int sh, int sw, int ph, int pw)
{
    im2col(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw);
}

extern "C" __global__ void im2col_f64(const double* __restrict__ x, double* __restrict__ cols,
                                      int N, int C, int H, int W,
                                      int kh, int kw, int sh, int sw, int ph, int pw)
{
    im2col(x, cols, N, C, H, W, kh, kw, sh, sw, ph, pw);
}

extern "C" __global__ void col2im_f32(const float* __restrict__ cols, float* __restrict__ x,
                                      int N, int C, int H, int W,
                                      int kh, int kw, int sh, int sw, int ph, int pw)
{
    col2im(cols, x, N, C, H, W, kh, kw, sh, sw, ph, pw);
}

extern "C" __global__ void col2im_f64(const double* __restrict__ cols, double* __restrict__ x,
                                      int N, int C, int H, int W,
                                      int kh, int kw, int sh, int sw, int ph, int pw)
{
    col2im(cols, x, N, C, H, W, kh, kw, sh, sw, ph, pw);
}

extern "C" __global__ void conv2d_grad_weight_f32(const float* __restrict__ dy, const float* __restrict__ cols,
                                                  float* __restrict__ partial, int N, int O, int R, int L)
{
    conv2d_grad_weight(dy, cols, partial, N, O, R, L);
}

extern "C" __global__ void conv2d_grad_weight_f64(const double* __restrict__ dy, const double* __restrict__ cols,
                                                  double* __restrict__ partial, int N, int O, int R, int L)
{
    conv2d_grad_weight(dy, cols, partial, N, O, R, L);
}
