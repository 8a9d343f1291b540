// simt.h — run CUDA kernels on the CPU: g++ compiles the very same .cu file
// with `-include simt.h`, and simt_runtime.cpp runs it, one fiber per GPU thread.
//
// The model, in the words of the CUDA programming guide:
//
//   - A launch is a grid of blocks; blocks are independent, so they run one
//     after another here.
//   - Inside a block, threads may only rely on each other's writes after a
//     barrier. So the emulator runs every thread of a block as a fiber (its own
//     stack, ucontext) and switches between fibers ONLY at barriers:
//     __syncthreads() for the block, warp primitives (__shfl_*_sync,
//     __syncwarp, votes) for one warp. Between two barriers the threads run
//     one after another, in an order the test picks: forward (thread 0 first),
//     reverse, or a seeded random permutation redrawn at every barrier. A
//     kernel that is missing a barrier reads values another thread has not
//     written yet in at least one of these orders, and the test sees it.
//   - Shared memory belongs to the block and starts with garbage. Here it
//     starts as 0xFF bytes in every block (a NaN for float and double, -1 for
//     signed integers), so reading shared memory nobody wrote shows up.
//
// How `__shared__` works: it expands to `thread_local`. All fibers of a block
// run on one OS thread, so they see one copy of each such variable, as the
// threads of a block see one copy on a GPU; `thread_local` (unlike `static`)
// is also legal after `extern`, so `extern __shared__ float buf[];` (dynamic
// shared memory) is valid C++ too, and the emulator defines `buf` for it. The
// runtime fills this library's whole thread-local storage block (its ELF
// PT_TLS segment) with 0xFF before each block starts. Nothing else in the
// library may be thread_local, which is why none of this file's own state is.
// `__attribute__((used))` tells g++ that code it cannot see may touch the
// variable; without it g++ folds a shared array nobody writes to its initial
// zeros (hiding the bug the 0xFF fill is there to show), and may keep a
// shared value in a register across a barrier call.
//
// What is not emulated (emulator.py refuses these before compiling, with a
// message): inline PTX (asm), cooperative groups, constant memory, textures
// and surfaces, tensor-core instructions, half-precision types, dynamic
// parallelism. Races on GLOBAL memory between threads that never meet at a
// barrier are not caught: a thread runs to its next barrier without
// interruption, so an unsynchronised read-modify-write never loses an update
// here. Spin-waiting on another thread (a lock) never ends, since a thread
// only yields at a barrier.
#pragma once

#include <math.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

// --- CUDA's function and variable qualifiers --------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __shared__ __attribute__((used)) thread_local
// __restrict__ is already a g++ keyword.

#define SIMT_EXPORT __attribute__((visibility("default")))

// --- built-in variables -----------------------------------------------------

struct uint3 {
    unsigned x, y, z;
};

struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// Plain globals, set by the scheduler each time it switches to a fiber (and it
// only switches at barriers), so a kernel reads its own thread's values.
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

// --- barriers: the only places where fibers switch ---------------------------

namespace simt {

// Where a barrier was called: shown in error messages, and the emulator checks
// that all threads of a block wait at the same __syncthreads() call.
struct Where {
    const char* file;
    int line;
};

enum BlockOp { BLOCK_SYNC, BLOCK_COUNT, BLOCK_AND, BLOCK_OR };
enum WarpOp { WARP_SYNC, WARP_SHFL, WARP_BALLOT };

// Wait until every thread of the block arrives; returns how many threads
// passed a non-zero `pred` (for __syncthreads_count/and/or).
int block_barrier(Where where, const char* name, BlockOp op, int pred);

// Wait until every non-exited lane named in `mask` arrives (with the same mask).
// WARP_SHFL: returns lane `src`'s payload (all bits 1 when that lane did not
// take part: undefined on a GPU). WARP_BALLOT: returns the mask of lanes whose
// payload was non-zero. `src` = own lane means "keep my own value".
std::uint64_t warp_collective(Where where, const char* name, WarpOp op, unsigned mask,
                              std::uint64_t payload, int src);

// Stop the launch with an error (reported to Python as an exception).
[[noreturn]] void fail(Where where, const char* message);

unsigned active_mask();  // lanes of the calling warp that have not exited

inline unsigned linear_thread_id()
{
    return threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
}

inline int lane_id() { return (int)(linear_thread_id() % warpSize); }

template <class T>
T shuffle(Where where, const char* name, unsigned mask, T var, int src)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>,
                  "the emulator shuffles values of at most 8 bytes");
    std::uint64_t bits = 0;
    std::memcpy(&bits, &var, sizeof(T));
    bits = warp_collective(where, name, WARP_SHFL, mask, bits, src);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

inline void check_width(Where where, const char* message, int width)
{
    if (width < 1 || width > warpSize || (width & (width - 1)) != 0) fail(where, message);
}

// Source lanes, as the CUDA programming guide defines them for a warp split
// into segments of `width` lanes. A source outside the caller's segment
// means "return my own value".
template <class T>
T shfl(Where w, unsigned mask, T var, int src_lane, int width = warpSize)
{
    check_width(w, "__shfl_sync: width must be a power of 2 between 1 and 32", width);
    const int lane = lane_id();
    const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
    return shuffle(w, "__shfl_sync", mask, var, src);
}

template <class T>
T shfl_up(Where w, unsigned mask, T var, unsigned delta, int width = warpSize)
{
    check_width(w, "__shfl_up_sync: width must be a power of 2 between 1 and 32", width);
    const int lane = lane_id();
    const int src = (lane & (width - 1)) >= (int)delta ? lane - (int)delta : lane;
    return shuffle(w, "__shfl_up_sync", mask, var, src);
}

template <class T>
T shfl_down(Where w, unsigned mask, T var, unsigned delta, int width = warpSize)
{
    check_width(w, "__shfl_down_sync: width must be a power of 2 between 1 and 32", width);
    const int lane = lane_id();
    const int src = (lane & (width - 1)) + (int)delta < width ? lane + (int)delta : lane;
    return shuffle(w, "__shfl_down_sync", mask, var, src);
}

template <class T>
T shfl_xor(Where w, unsigned mask, T var, int lane_mask, int width = warpSize)
{
    check_width(w, "__shfl_xor_sync: width must be a power of 2 between 1 and 32", width);
    const int lane = lane_id();
    const int src = lane ^ lane_mask;
    // A lane may read from its own or an earlier segment, not a later one.
    const bool later = (src & ~(width - 1)) > (lane & ~(width - 1));
    return shuffle(w, "__shfl_xor_sync", mask, var, (src >= warpSize || later) ? lane : src);
}

}  // namespace simt

#define SIMT_HERE (::simt::Where{__FILE__, __LINE__})

#define __syncthreads() ((void)::simt::block_barrier(SIMT_HERE, "__syncthreads()", ::simt::BLOCK_SYNC, 0))
#define __syncthreads_count(p) ::simt::block_barrier(SIMT_HERE, "__syncthreads_count()", ::simt::BLOCK_COUNT, (p) ? 1 : 0)
#define __syncthreads_and(p) \
    (::simt::block_barrier(SIMT_HERE, "__syncthreads_and()", ::simt::BLOCK_AND, (p) ? 1 : 0) == (int)(blockDim.x * blockDim.y * blockDim.z))
#define __syncthreads_or(p) (::simt::block_barrier(SIMT_HERE, "__syncthreads_or()", ::simt::BLOCK_OR, (p) ? 1 : 0) != 0)

#define __syncwarp(...) ((void)::simt::warp_collective(SIMT_HERE, "__syncwarp()", ::simt::WARP_SYNC, ::simt::syncwarp_mask(__VA_ARGS__), 0, 0))
#define __shfl_sync(...) ::simt::shfl(SIMT_HERE, __VA_ARGS__)
#define __shfl_up_sync(...) ::simt::shfl_up(SIMT_HERE, __VA_ARGS__)
#define __shfl_down_sync(...) ::simt::shfl_down(SIMT_HERE, __VA_ARGS__)
#define __shfl_xor_sync(...) ::simt::shfl_xor(SIMT_HERE, __VA_ARGS__)
#define __ballot_sync(mask, p) \
    ((unsigned)::simt::warp_collective(SIMT_HERE, "__ballot_sync()", ::simt::WARP_BALLOT, (mask), (p) ? 1 : 0, 0))
#define __any_sync(mask, p) (__ballot_sync((mask), (p)) != 0u)
#define __all_sync(mask, p) ::simt::all_of((mask), __ballot_sync((mask), (p)))
#define __activemask() ::simt::active_mask()
#define __trap() ::simt::fail(SIMT_HERE, "the kernel called __trap()")

namespace simt {
inline unsigned syncwarp_mask() { return 0xffffffffu; }
inline unsigned syncwarp_mask(unsigned mask) { return mask; }
// __all_sync: every lane that took part (named in mask, not exited) voted yes.
inline bool all_of(unsigned mask, unsigned ballot) { return ballot == (mask & active_mask()); }
}  // namespace simt

// assert() in a kernel: fail the launch with the expression, not abort Python.
#undef assert
#define assert(e) ((e) ? (void)0 : ::simt::fail(SIMT_HERE, "assert(" #e ") failed"))

// Memory fences order one thread's writes as seen by others; here every write
// is visible at once (one thread runs at a time), so they have nothing to do.
inline void __threadfence() {}
inline void __threadfence_block() {}

// --- atomics ----------------------------------------------------------------
// A fiber never switches inside these functions, so a plain read-modify-write
// is atomic. Each returns the old value, as in CUDA.

namespace simt {
template <class T, class F>
inline T atomic_update(T* address, F update)
{
    const T old = *address;
    *address = update(old);
    return old;
}
}  // namespace simt

#define SIMT_ATOMIC(name, T, expr) \
    inline T name(T* address, T val) { return ::simt::atomic_update(address, [val]([[maybe_unused]] T old) { return (T)(expr); }); }

SIMT_ATOMIC(atomicAdd, int, old + val)
SIMT_ATOMIC(atomicAdd, unsigned, old + val)
SIMT_ATOMIC(atomicAdd, unsigned long long, old + val)
SIMT_ATOMIC(atomicAdd, float, old + val)
SIMT_ATOMIC(atomicAdd, double, old + val)
SIMT_ATOMIC(atomicSub, int, old - val)
SIMT_ATOMIC(atomicSub, unsigned, old - val)
SIMT_ATOMIC(atomicExch, int, val)
SIMT_ATOMIC(atomicExch, unsigned, val)
SIMT_ATOMIC(atomicExch, unsigned long long, val)
SIMT_ATOMIC(atomicExch, float, val)
SIMT_ATOMIC(atomicMin, int, old < val ? old : val)
SIMT_ATOMIC(atomicMin, unsigned, old < val ? old : val)
SIMT_ATOMIC(atomicMin, long long, old < val ? old : val)
SIMT_ATOMIC(atomicMin, unsigned long long, old < val ? old : val)
SIMT_ATOMIC(atomicMax, int, old > val ? old : val)
SIMT_ATOMIC(atomicMax, unsigned, old > val ? old : val)
SIMT_ATOMIC(atomicMax, long long, old > val ? old : val)
SIMT_ATOMIC(atomicMax, unsigned long long, old > val ? old : val)
SIMT_ATOMIC(atomicAnd, int, old & val)
SIMT_ATOMIC(atomicAnd, unsigned, old & val)
SIMT_ATOMIC(atomicOr, int, old | val)
SIMT_ATOMIC(atomicOr, unsigned, old | val)
SIMT_ATOMIC(atomicXor, int, old ^ val)
SIMT_ATOMIC(atomicXor, unsigned, old ^ val)
SIMT_ATOMIC(atomicInc, unsigned, old >= val ? 0u : old + 1u)
SIMT_ATOMIC(atomicDec, unsigned, (old == 0u || old > val) ? val : old - 1u)
#undef SIMT_ATOMIC

#define SIMT_ATOMIC_CAS(T) \
    inline T atomicCAS(T* address, T compare, T val) \
    { \
        const T old = *address; \
        if (old == compare) *address = val; \
        return old; \
    }
SIMT_ATOMIC_CAS(int)
SIMT_ATOMIC_CAS(unsigned)
SIMT_ATOMIC_CAS(unsigned long long)
#undef SIMT_ATOMIC_CAS

// --- device math that <cmath> does not have ----------------------------------
// expf, tanhf, fmaxf, fmaf ... come from <cmath>; these are CUDA's extras.

#define SIMT_MINMAX(T) \
    inline T min(T a, T b) { return a < b ? a : b; } \
    inline T max(T a, T b) { return a > b ? a : b; }
SIMT_MINMAX(int)
SIMT_MINMAX(unsigned)
SIMT_MINMAX(long long)
SIMT_MINMAX(unsigned long long)
SIMT_MINMAX(float)
SIMT_MINMAX(double)
#undef SIMT_MINMAX

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanhf(float x) { return tanhf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline float __uint_as_float(unsigned i) { float x; std::memcpy(&x, &i, 4); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
template <class T>
inline T __ldg(const T* p) { return *p; }

// --- how emulator.py calls a kernel --------------------------------------------
// For each kernel, the generated entry file says SIMT_KERNEL(name), which
// exports two C functions: simt_entry_<name>(void** args) calls the kernel with
// args[k] pointing at argument k (as cudaLaunchKernel takes them), and
// simt_signature_<name>() describes the parameter types, so Python can check
// and convert what it is given: "f4" float, "i4" int, "u8" unsigned 64-bit,
// "b1" bool, "*f4" float*, "*cf4" const float*, "*v" void*, "?" anything else.

namespace simt {

template <class T>
void describe_scalar(char* out)
{
    if constexpr (std::is_same_v<T, bool>)
        std::strcat(out, "b1");
    else if constexpr (std::is_floating_point_v<T>)
        std::snprintf(out + std::strlen(out), 8, "f%zu", sizeof(T));
    else if constexpr (std::is_integral_v<T>)
        std::snprintf(out + std::strlen(out), 8, "%c%zu", std::is_signed_v<T> ? 'i' : 'u', sizeof(T));
    else if constexpr (std::is_void_v<T>)
        std::strcat(out, "v");
    else
        std::strcat(out, "?");
}

template <class P>
void describe(char* out)
{
    if constexpr (std::is_pointer_v<P>) {
        using Pointee = std::remove_pointer_t<P>;
        std::strcat(out, std::is_const_v<Pointee> ? "*c" : "*");
        if constexpr (std::is_pointer_v<Pointee>)
            std::strcat(out, "?");  // pointers to pointers: not passed from Python
        else
            describe_scalar<std::remove_cv_t<Pointee>>(out);
    } else {
        describe_scalar<std::remove_cv_t<P>>(out);
    }
    std::strcat(out, ",");
}

template <class... P>
const char* signature(void (*)(P...))
{
    static char text[16 * (sizeof...(P) + 1)];
    text[0] = '\0';
    (describe<P>(text), ...);
    return text;
}

template <class... P, std::size_t... I>
void invoke(void (*kernel)(P...), void** args, std::index_sequence<I...>)
{
    kernel(*static_cast<P*>(args[I])...);
}

template <class... P>
void invoke(void (*kernel)(P...), void** args)
{
    invoke(kernel, args, std::index_sequence_for<P...>{});
}

}  // namespace simt

#define SIMT_KERNEL(name) \
    extern "C" SIMT_EXPORT void simt_entry_##name(void** args) { ::simt::invoke(name, args); } \
    extern "C" SIMT_EXPORT const char* simt_signature_##name() { return ::simt::signature(name); }
