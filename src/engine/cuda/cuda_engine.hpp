// The CUDA engine's factory and device queries; the engine itself is in cuda_engine.cpp.
#pragma once

#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"

namespace rbm::cuda {

int visible_device_count();
// "NVIDIA H100 80GB HBM3 (GPU-xxxxxxxx-...)" for a visible device index.
std::string device_description(int device);
std::string device_uuid(int device);

std::unique_ptr<Engine> make_cuda_engine(RbmShape shape, int device, bool tf32, ChainKernel chain_kernel);

}  // namespace rbm::cuda
