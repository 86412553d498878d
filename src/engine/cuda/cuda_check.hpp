// Checks for every CUDA runtime, cuBLAS and NCCL call: a failure throws rbm::Error
// naming the call, the library's own description of the error, and file:line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "engine/cuda/cublas_library.hpp"
#include "util/check.hpp"

#define RBM_CUDA(call)                                                                      \
    do {                                                                                    \
        cudaError_t rbm_cuda_rc_ = (call);                                                  \
        RBM_CHECK(rbm_cuda_rc_ == cudaSuccess,                                              \
                  "CUDA: " #call " failed: " << cudaGetErrorString(rbm_cuda_rc_));          \
    } while (0)

#define RBM_CUBLAS(call)                                                                    \
    do {                                                                                    \
        cublasStatus_t rbm_cublas_rc_ = (call);                                             \
        RBM_CHECK(rbm_cublas_rc_ == CUBLAS_STATUS_SUCCESS,                                  \
                  "cuBLAS: " #call " failed: "                                              \
                      << ::rbm::cuda::cublas().cublasGetStatusString(rbm_cublas_rc_));      \
    } while (0)

// After a kernel launch: launch errors (bad configuration) surface here.
#define RBM_CUDA_LAUNCHED() RBM_CUDA(cudaGetLastError())
