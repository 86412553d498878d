// What an engine hands the dist layer to sum across ranks: a buffer in parameter layout,
// on the host or a device. A plain view, so that dist knows nothing of the RBM or its
// engines, and an engine nothing of MPI.
#pragma once

#include <cstddef>

namespace rbm {

struct GradientView {
    float* data = nullptr;
    std::size_t count = 0;
    bool on_device = false;
    void* stream = nullptr;  // the device stream that produces it (cudaStream_t), for NCCL
};

}  // namespace rbm
