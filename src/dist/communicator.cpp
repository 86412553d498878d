// MPI collectives for the training loop (see communicator.hpp).
#include "dist/communicator.hpp"

#include <mpi.h>

#include <cstdlib>
#include <limits>

#include "dist/mpi_check.hpp"
#include "util/check.hpp"

namespace rbm {

MpiSession::MpiSession(int* argc, char*** argv) {
    int initialized = 0, provided = MPI_THREAD_SINGLE;
    RBM_MPI(MPI_Initialized(&initialized));
    if (!initialized) RBM_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    else RBM_MPI(MPI_Query_thread(&provided));
    // OpenBLAS's, the CPU engine's and the watchdog's threads are legal only from FUNNELED on.
    RBM_CHECK(provided >= MPI_THREAD_FUNNELED, "MPI granted thread support level "
                                                   << provided << ", below MPI_THREAD_FUNNELED (" << MPI_THREAD_FUNNELED
                                                   << "), which rbm's helper threads need");
    // Errors come back as codes, so RBM_MPI can report them with file and line.
    RBM_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

MpiSession::~MpiSession() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

Communicator::Communicator() {
    RBM_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    RBM_MPI(MPI_Comm_size(MPI_COMM_WORLD, &size_));
}

namespace {
// MPI counts are int: large buffers go in pieces.
template <typename Fn>
void in_chunks(std::size_t n, Fn&& fn) {
    constexpr std::size_t most = std::size_t(std::numeric_limits<int>::max()) / 2;
    for (std::size_t start = 0; start < n; start += most) fn(start, int(std::min(most, n - start)));
}
}  // namespace

void Communicator::allreduce_sum(float* data, std::size_t n) const {
    if (size_ == 1) return;
    in_chunks(n, [&](std::size_t start, int count) {
        RBM_MPI(MPI_Allreduce(MPI_IN_PLACE, data + start, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    });
}

void Communicator::allreduce_sum(double* data, std::size_t n) const {
    if (size_ == 1) return;
    in_chunks(n, [&](std::size_t start, int count) {
        RBM_MPI(MPI_Allreduce(MPI_IN_PLACE, data + start, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    });
}

namespace {
uint64_t allreduce_u64(int ranks, uint64_t value, MPI_Op op) {
    if (ranks == 1) return value;
    RBM_MPI(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_UINT64_T, op, MPI_COMM_WORLD));
    return value;
}
}  // namespace

uint64_t Communicator::allreduce_min(uint64_t value) const { return allreduce_u64(size_, value, MPI_MIN); }
uint64_t Communicator::allreduce_max(uint64_t value) const { return allreduce_u64(size_, value, MPI_MAX); }
uint64_t Communicator::allreduce_sum(uint64_t value) const { return allreduce_u64(size_, value, MPI_SUM); }

void Communicator::broadcast(void* data, std::size_t bytes, int root) const {
    if (size_ == 1) return;
    in_chunks(bytes, [&](std::size_t start, int count) {
        RBM_MPI(MPI_Bcast(static_cast<char*>(data) + start, count, MPI_BYTE, root, MPI_COMM_WORLD));
    });
}

void Communicator::broadcast(std::string& text, int root) const {
    uint64_t length = text.size();
    broadcast(&length, sizeof length, root);
    text.resize(length);
    broadcast(text.data(), length, root);
}

std::vector<uint8_t> Communicator::gather(const void* data, std::size_t bytes, int root) const {
    std::vector<uint8_t> all(rank_ == root ? bytes * std::size_t(size_) : 0);
    RBM_CHECK(bytes <= std::size_t(std::numeric_limits<int>::max()), "gather of " << bytes << " bytes is too large");
    RBM_MPI(MPI_Gather(data, int(bytes), MPI_BYTE, all.data(), int(bytes), MPI_BYTE, root, MPI_COMM_WORLD));
    return all;
}

void Communicator::barrier() const { RBM_MPI(MPI_Barrier(MPI_COMM_WORLD)); }

void Communicator::end_job_from_thread(int code) { std::_Exit(code); }

namespace {
class MpiReducer final : public GradientReducer {
public:
    explicit MpiReducer(const Communicator& comm) : comm_(comm) {}
    void sum_in_place(const GradientView& g) override {
        RBM_CHECK(!g.on_device, "the MPI reducer needs a host gradient buffer");
        comm_.allreduce_sum(g.data, g.count);
    }
    std::string describe() const override {
        return comm_.size() > 1 ? "MPI_Allreduce (host buffers)" : "none (one rank)";
    }
    bool sums_anything() const override { return comm_.size() > 1; }

private:
    const Communicator& comm_;
};
}  // namespace

std::unique_ptr<GradientReducer> make_mpi_reducer(const Communicator& comm) {
    return std::make_unique<MpiReducer>(comm);
}

void check_launch_consistency(const Communicator& comm) {
    const char* tasks = std::getenv("SLURM_NTASKS");
    if (!tasks || !*tasks) return;
    if (std::atoi(tasks) != comm.size())
        fail("misconfigured launch: SLURM_NTASKS=", tasks, " but MPI sees a world of ", comm.size(),
             " rank(s): inside a Slurm allocation start one rank per task, with `srun --mpi=pmix rbm ...` or `mpirun "
             "rbm ...` without -np (or -np ", tasks, "); rbm without a launcher is one rank");
}

}  // namespace rbm
