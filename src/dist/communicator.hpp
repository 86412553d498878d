// The MPI world as rbm uses it: one MPI_Init per process, the collectives the
// training loop needs (gradient allreduce, metric reductions, checkpoint gathers,
// decisions broadcast by rank 0), and a way to end every rank from a thread. Every MPI
// call is checked. A plain process with no launcher is a world of one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/gradient_view.hpp"

namespace rbm {

// Initialises MPI for the life of the object (once per process) at MPI_THREAD_FUNNELED:
// rbm's other threads (OpenBLAS's, the CPU engine's, the NCCL watchdog) never call MPI.
// Not MPI_THREAD_MULTIPLE, which would let the watchdog call MPI_Abort: where UCX was
// built without thread support, Open MPI 4 then drops UCX for TCP between nodes.
class MpiSession {
public:
    MpiSession(int* argc, char*** argv);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;
};

class Communicator {
public:
    Communicator();  // MPI_COMM_WORLD; needs a live MpiSession
    int rank() const { return rank_; }
    int size() const { return size_; }
    bool is_root() const { return rank_ == 0; }

    void allreduce_sum(float* data, std::size_t n) const;
    void allreduce_sum(double* data, std::size_t n) const;
    uint64_t allreduce_min(uint64_t value) const;
    uint64_t allreduce_max(uint64_t value) const;
    uint64_t allreduce_sum(uint64_t value) const;  // modulo 2^64, as unsigned arithmetic wraps
    void broadcast(void* data, std::size_t bytes, int root = 0) const;
    void broadcast(std::string& text, int root = 0) const;
    // Root receives every rank's `bytes` bytes in rank order; others get an empty vector.
    std::vector<uint8_t> gather(const void* data, std::size_t bytes, int root = 0) const;
    void barrier() const;
    // Ends the job from a thread that may not call MPI (the NCCL watchdog): this process
    // exits with `code` at once, and mpirun, or srun --mpi=pmix, ends the other ranks (both
    // measured; tests/mpi/thread_abort). (A failing rank's main thread ends the job with
    // MPI_Abort in main.cpp, where the world may outlive any Communicator.)
    [[noreturn]] static void end_job_from_thread(int code);

private:
    int rank_ = 0, size_ = 1;
};

// Sums a gradient buffer across ranks in place. The MPI reducer works on host buffers;
// CUDA builds add the NCCL and the host-staged MPI reducers for device buffers
// (dist/cuda/) behind the same interface.
class GradientReducer {
public:
    virtual ~GradientReducer() = default;
    virtual void sum_in_place(const GradientView& gradient) = 0;
    virtual std::string describe() const = 0;
    // False when a step has nothing to sum (one rank, unless --comm named a device
    // reducer): the trainer then does not ask the engine for its gradient, which an engine
    // may apply unstored. The device reducers always sum, so `--comm nccl` on one rank
    // still calls ncclAllReduce and records its event (NCCL itself makes one rank's
    // in-place sum a no-op).
    virtual bool sums_anything() const { return true; }
};

std::unique_ptr<GradientReducer> make_mpi_reducer(const Communicator& comm);

// Fails when SLURM_NTASKS is set and differs from the world size: a launch that
// would otherwise train N unrelated single-rank copies.
void check_launch_consistency(const Communicator& comm);

}  // namespace rbm
