// Picks how gradients are summed across ranks (--comm auto|nccl|mpi): NCCL on device
// buffers for the CUDA engine, MPI on host buffers for the CPU engine, and MPI staged
// through the host for device buffers when several ranks share a GPU (NCCL cannot).
// On one rank `auto` sums nothing, so an engine may apply its gradient unstored; an
// explicit --comm nccl, or mpi with device gradients, still runs that path (as the GPU
// checks do); the MPI reducer on host buffers sums nothing on one rank whatever --comm says.
#pragma once

#include <memory>
#include <string>

#include "dist/comm_kind.hpp"
#include "dist/communicator.hpp"

namespace rbm {

// `device_gradients`: the engine keeps its gradient on a GPU. `shares_gpu`: another
// rank of this node uses the same GPU; where any rank's does, every rank stages through
// MPI (or, with --comm nccl, every rank refuses with an explanation). Collective when
// the gradients are on GPUs.
std::unique_ptr<GradientReducer> make_reducer(const Communicator& comm, CommKind kind, bool device_gradients,
                                              bool shares_gpu);

}  // namespace rbm
