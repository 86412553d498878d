// Gradient reducers for device buffers: NCCL (one communicator, in-place allreduce on
// the engine's stream, watched by a watchdog) and MPI staged through pinned host memory.
#pragma once

#include <memory>

#include "dist/communicator.hpp"

namespace rbm::cuda {

std::unique_ptr<GradientReducer> make_nccl_reducer(const Communicator& comm);
std::unique_ptr<GradientReducer> make_staged_mpi_reducer(const Communicator& comm);

}  // namespace rbm::cuda
