// AIS and RAISE chains on a GPU: eval::AnnealingChains implemented with cuBLAS and the
// kernels of kernels/ais_kernels.cuh, so `rbm eval --device cuda` anneals on the GPU
// with the same loops, schedule and statistics as on the CPU.
#pragma once

#include "eval/ais.hpp"

namespace rbm::eval {

// Uploads the RBM and the base model to `device` once; every batch of chains the factory
// makes shares them, one stream and one cuBLAS handle (FP32, no TF32: log-weights sum
// 14,500 differences of products).
ChainsFactory cuda_chains_factory(const ParamBuffer& params, const BaseModel& base, int device);

}  // namespace rbm::eval
