// Chooses and builds the engine a run asked for (--device auto|cpu|cuda). The CUDA
// engine exists only in builds where nvcc was found; asking for it elsewhere is an
// error that says so.
#pragma once

#include <memory>
#include <string>

#include "engine/device_kind.hpp"
#include "engine/engine.hpp"
#include "engine/gpu_devices.hpp"

namespace rbm {

// Small batches on a GPU: the k Gibbs sweeps as one thread-block-cluster kernel with W
// in shared memory (kernels/gibbs_chain.cuh) instead of 4k graph nodes (sweeps), or
// that kernel running the batch's gather, positive phase and monitoring too, so a step
// is that kernel and the gradient product (step).
enum class ChainKernel { off, sweeps, step };

// RBM_CUDA_CHAIN_KERNEL=1: sweeps, =2: step; unset or 0: off; anything else is an error.
ChainKernel chain_kernel_requested();

struct EngineOptions {
    DeviceKind device = DeviceKind::auto_select;
    int cuda_device = 0;   // which visible GPU (the dist layer picks it from the node-local rank)
    bool tf32 = false;     // cuBLAS TF32 tensor-core products instead of FP32
    // Off until it has run on a GPU (docs/gpu.md); RBM_CUDA_CHAIN_KERNEL turns it on for
    // a run, the GPU tests and rbm_bench_cuda set it directly.
    ChainKernel chain_kernel = chain_kernel_requested();
};

// Fails, saying why, unless this build has CUDA and a GPU is visible.
void require_cuda_device();

std::unique_ptr<Engine> make_engine(RbmShape shape, const EngineOptions& options);

}  // namespace rbm
