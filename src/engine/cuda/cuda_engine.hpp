// The CUDA engine's factory (its device queries: engine/gpu_devices.hpp); the engine
// itself is in cuda_engine.cpp.
#pragma once

#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "engine/gpu_devices.hpp"

namespace rbm::cuda {

std::unique_ptr<Engine> make_cuda_engine(RbmShape shape, int device, bool tf32, ChainKernel chain_kernel);

}  // namespace rbm::cuda
