// Row-major matrix products through column-major cuBLAS, shared by the CUDA engine and
// the GPU's AIS chains: rbm stores every matrix row-major, as the CPU code does.
#pragma once

#include <cublas_v2.h>

#include <cstddef>

#include "engine/cuda/cuda_check.hpp"

namespace rbm::cuda {

// Row-major C[m, n] = op(A) op(B) (beta 0): column-major C' = op(B)' op(A)', so the
// operands swap.
inline void row_major_gemm(cublasHandle_t handle, bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k,
                           const float* a, const float* b, float* c) {
    const float one = 1.0f, zero = 0.0f;
    RBM_CUBLAS(cublas().cublasSgemm(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(n),
                                    int(m), int(k), &one, b, int(tb ? k : n), a, int(ta ? m : k), &zero, c, int(n)));
}

}  // namespace rbm::cuda
