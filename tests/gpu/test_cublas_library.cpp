// cuBLAS is loaded at first use (src/engine/cuda/cublas_library): every function rbm calls
// resolves from the library, on any machine that has it, GPU or not; and a failing cuBLAS
// call is reported with the call and cuBLAS's own words. These tests need no GPU.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>

#include "engine/cuda/cuda_check.hpp"
#include "../unit/test_support.hpp"

using namespace rbm;

TEST(CublasLibrary, EveryFunctionResolves) {
    const cuda::CublasLibrary& lib = cuda::cublas();
    EXPECT_TRUE(lib.cublasCreate && lib.cublasDestroy && lib.cublasSetStream && lib.cublasSetMathMode &&
                lib.cublasSetWorkspace && lib.cublasSgemm && lib.cublasSgemv && lib.cublasSger &&
                lib.cublasGetStatusString);
    EXPECT_EQ(std::string(lib.cublasGetStatusString(CUBLAS_STATUS_SUCCESS)), "success");
}

TEST(CublasLibrary, AFailedCallNamesItselfAndCublassReason) {
    // A null handle is refused by cuBLAS itself, with or without a GPU.
    const float one = 1.0f;
    float x = 1.0f;
    EXPECT_ERROR_HAS(RBM_CUBLAS(cuda::cublas().cublasSgemv(nullptr, CUBLAS_OP_N, 1, 1, &one, &x, 1, &x, 1, &one, &x, 1)),
                     "cuBLAS: cuda::cublas().cublasSgemv(nullptr, CUBLAS_OP_N");
    EXPECT_ERROR_HAS(RBM_CUBLAS(cuda::cublas().cublasSgemv(nullptr, CUBLAS_OP_N, 1, 1, &one, &x, 1, &x, 1, &one, &x, 1)),
                     "failed: the library was not initialized");
}
