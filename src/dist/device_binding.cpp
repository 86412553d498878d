// Node-local rank to GPU (see device_binding.hpp).
#include "dist/device_binding.hpp"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dist/mpi_check.hpp"
#include "engine/gpu_devices.hpp"
#include "util/check.hpp"

namespace rbm {
namespace {

std::string host_name() {
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    return name;
}

// Every rank's fixed-size text, gathered to rank 0.
std::vector<std::string> gather_text(const Communicator& comm, const std::string& text) {
    char buffer[256] = {};
    std::strncpy(buffer, text.c_str(), sizeof buffer - 1);
    const std::vector<uint8_t> all = comm.gather(buffer, sizeof buffer);
    std::vector<std::string> out;
    for (std::size_t r = 0; r < all.size() / sizeof buffer; ++r)
        out.emplace_back(reinterpret_cast<const char*>(all.data()) + r * sizeof buffer);
    return out;
}

}  // namespace

DeviceKind agreed_device(DeviceKind requested, int with_gpu, int ranks, int first_without_gpu) {
    if (requested != DeviceKind::auto_select) return requested;
    if (with_gpu == 0) return DeviceKind::cpu;
    if (with_gpu == ranks) return DeviceKind::cuda;
    fail("--device auto: ", with_gpu, " of ", ranks, " ranks see a GPU (rank ", first_without_gpu,
         " sees none), and every rank must run the same engine; pass --device cpu, or run where every rank sees "
         "a GPU");
}

DeviceKind resolve_device_everywhere(const Communicator& comm, DeviceKind requested) {
    const bool sees_gpu = resolve_device(requested) == DeviceKind::cuda;
    double with_gpu = sees_gpu ? 1.0 : 0.0;
    comm.allreduce_sum(&with_gpu, 1);
    const uint64_t first_without = comm.allreduce_min(sees_gpu ? UINT64_MAX : uint64_t(comm.rank()));
    return agreed_device(requested, int(with_gpu), comm.size(), int(std::min<uint64_t>(first_without, INT32_MAX)));
}

DeviceBinding bind_device(const Communicator& comm, std::ostream& log) {
    DeviceBinding b;
    MPI_Comm node = MPI_COMM_NULL;
    RBM_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node));
    RBM_MPI(MPI_Comm_set_errhandler(node, MPI_ERRORS_RETURN));
    RBM_MPI(MPI_Comm_rank(node, &b.local_rank));
    RBM_MPI(MPI_Comm_size(node, &b.local_size));
    const int visible = cuda_device_count();
    if (visible == 0) {
        MPI_Comm_free(&node);
        fail("--device cuda on host ", host_name(), ": no CUDA GPU is visible to rank ", comm.rank(), " (CUDA: ",
             why_no_cuda_device(), ")");
    }
    b.device = b.local_rank % visible;
    std::string uuid;
#ifdef RBM_HAVE_CUDA
    uuid = cuda::device_uuid(b.device);
    b.description = cuda::device_description(b.device);
#endif
    // Ranks of this node compare UUIDs: two on one GPU is legal for --comm mpi only.
    std::vector<char> mine(64, 0), all(64 * std::size_t(b.local_size), 0);
    std::strncpy(mine.data(), uuid.c_str(), 63);
    RBM_MPI(MPI_Allgather(mine.data(), 64, MPI_CHAR, all.data(), 64, MPI_CHAR, node));
    for (int r = 0; r < b.local_size; ++r)
        if (r != b.local_rank && std::strncmp(all.data() + 64 * r, mine.data(), 64) == 0) b.shares_gpu = true;
    RBM_MPI(MPI_Comm_free(&node));

    const std::vector<std::string> lines = gather_text(
        comm, "rank " + std::to_string(comm.rank()) + " on " + host_name() + " (local rank " +
                  std::to_string(b.local_rank) + "): GPU " + std::to_string(b.device) + " " + b.description);
    if (comm.is_root())
        for (const auto& line : lines) log << line << "\n";
    return b;
}

}  // namespace rbm
