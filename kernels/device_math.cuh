// Device-side helpers shared by the kernels: activations in float and double, and a
// block-wide double sum (deterministic: a fixed shuffle tree, no atomics).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace rbm::kernels {

constexpr int kThreads = 256;

inline unsigned blocks_for(std::size_t n, int per_thread = 1) {
    const std::size_t threads = (n + per_thread - 1) / per_thread;
    return unsigned((threads + kThreads - 1) / kThreads);
}

__device__ __forceinline__ float sigmoidf_dev(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float softplusf_dev(float x) {
    return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

__device__ __forceinline__ double softplus_dev(double x) {
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

// Block-wide sum of one double per thread; the result is valid in thread 0.
__device__ inline double block_sum(double value) {
    __shared__ double partial[32];
    for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) partial[warp] = value;
    __syncthreads();
    value = threadIdx.x < (blockDim.x + 31) / 32 ? partial[lane] : 0.0;
    if (warp == 0)
        for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
    return value;
}

}  // namespace rbm::kernels
