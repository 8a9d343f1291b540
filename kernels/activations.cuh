// activations.cuh — the LSTM cell's nonlinearities, in the precision of their argument.
//
// The kernels of lstm.cu and pixelrnn.cu are templates over the element type T
// (float or double). C's math library names each precision separately: expf
// and tanhf compute in float, exp and tanh in double. A template that called
// expf would silently drop a double to float (half its digits gone), and one
// that called exp on a float would compute in double and round back (slower on
// a GPU, and no longer the float kernel it claims to be). These overloads pick
// the function by the argument's type, so a template writes exp_of(z) and
// always gets the right one:
//
//     exp_of(z)  = e^z             tanh_of(z) = tanh z
//     sigmoid(z) = 1 / (1 + e^-z)
//
// tinygen/cuda.py pastes this file into the text it hands to NVRTC (which
// compiles a string and cannot look for headers); nvcc and the emulator of the
// tests read it through the #include.
#ifndef TINYGEN_ACTIVATIONS_CUH
#define TINYGEN_ACTIVATIONS_CUH

__device__ __forceinline__ float exp_of(float z) { return expf(z); }
__device__ __forceinline__ double exp_of(double z) { return exp(z); }
__device__ __forceinline__ float tanh_of(float z) { return tanhf(z); }
__device__ __forceinline__ double tanh_of(double z) { return tanh(z); }

// For z -> -inf, e^-z overflows to inf and the quotient is 0, the right limit,
// so no special case is needed.
template <typename T>
__device__ __forceinline__ T sigmoid(T z)
{
    return T(1) / (T(1) + exp_of(-z));
}

#endif  // TINYGEN_ACTIVATIONS_CUH
