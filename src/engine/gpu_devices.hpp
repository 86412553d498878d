// What GPUs this process sees: for the engine factory (--device auto) and for the dist
// layer's binding of ranks to GPUs, which needs the devices but not the engines.
#pragma once

#include <string>

#include "engine/device_kind.hpp"

namespace rbm {

// True when this build has the CUDA engine.
bool cuda_built();
// GPUs visible to this process (0 without CUDA or without a driver).
int cuda_device_count();
// Why none is visible, in CUDA's words ("no CUDA-capable device is detected", a driver
// older than the runtime, ...), for the messages that say so; "" when one is.
std::string why_no_cuda_device();
// Resolves auto: cuda when built and a GPU is visible, else cpu.
DeviceKind resolve_device(DeviceKind requested);

namespace cuda {  // CUDA builds only (src/engine/cuda/cuda_engine.cpp)

int visible_device_count();
std::string device_count_problem();
// "NVIDIA H100 80GB HBM3 (GPU-xxxxxxxx-...)" for a visible device index.
std::string device_description(int device);
std::string device_uuid(int device);

}  // namespace cuda
}  // namespace rbm
