// Which GPU a rank uses: its node-local rank (from MPI's shared-memory split, which
// agrees with OMPI_COMM_WORLD_LOCAL_RANK and SLURM_LOCALID) picks one of the GPUs the
// process can see, so CUDA_VISIBLE_DEVICES is respected. NCCL 2.28 refuses two ranks
// on one GPU, so that case is detected here, by GPU UUID, and explained.
#pragma once

#include <ostream>
#include <string>

#include "dist/communicator.hpp"
#include "engine/device_kind.hpp"

namespace rbm {

struct DeviceBinding {
    int local_rank = 0, local_size = 1;
    int device = 0;           // visible device index this rank uses
    std::string description;  // GPU name and UUID
    bool shares_gpu = false;  // another rank on this node uses the same GPU
};

// What `requested` resolves to when `with_gpu` of `ranks` ranks see a GPU: every rank
// must run the same engine, or the GPU ranks would wait in collectives (GPU binding,
// NCCL) that the CPU ranks never join. auto on a job whose ranks disagree is an error
// that says so.
DeviceKind agreed_device(DeviceKind requested, int with_gpu, int ranks, int first_without_gpu);

// Collective: resolve_device(requested) on every rank alike (see agreed_device).
DeviceKind resolve_device_everywhere(const Communicator& comm, DeviceKind requested);

// Collective. Picks the GPU, gathers every rank's host and GPU to rank 0, which prints
// one line per rank to `log`.
DeviceBinding bind_device(const Communicator& comm, std::ostream& log);

}  // namespace rbm
