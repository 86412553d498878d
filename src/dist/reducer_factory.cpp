// Gradient reducer selection (see reducer_factory.hpp).
#include "dist/reducer_factory.hpp"

#include "util/check.hpp"

#ifdef RBM_HAVE_CUDA
#include "dist/cuda/device_reducers.hpp"
#endif

namespace rbm {

std::unique_ptr<GradientReducer> make_reducer(const Communicator& comm, CommKind kind, bool device_gradients,
                                              bool shares_gpu) {
    if (!device_gradients) {
        if (kind == CommKind::nccl) fail("--comm nccl needs the CUDA engine (--device cuda)");
        return make_mpi_reducer(comm);
    }
#ifdef RBM_HAVE_CUDA
    if (kind == CommKind::auto_select && comm.size() == 1) return make_mpi_reducer(comm);  // sums nothing
    // Every rank must pick the same reducer, or the ones that chose NCCL wait for ever in
    // its set-up: with 3 ranks on 2 GPUs only two of them share one.
    const bool any_shares = comm.allreduce_max(uint64_t(shares_gpu)) != 0;
    if (kind == CommKind::auto_select) kind = any_shares ? CommKind::mpi : CommKind::nccl;
    if (kind == CommKind::nccl && any_shares)
        fail("--comm nccl: two ranks of a node use the same GPU, which NCCL 2.28 refuses; launch at most one "
             "rank per GPU, or pass --comm mpi to stage the gradients through the host");
    if (kind == CommKind::nccl) return cuda::make_nccl_reducer(comm);
    return cuda::make_staged_mpi_reducer(comm);
#else
    (void)shares_gpu;
    fail("device gradients need a CUDA build");
#endif
}

}  // namespace rbm
