// The time one gradient allreduce takes, alone: rbm's Communicator summing a buffer the
// size of a 784 x 500 RBM's gradient (393,284 floats) in place, after a barrier, many
// times; rank 0 prints the mean and the best. Run it under mpirun beside the training
// benchmark (tools/bench_mpi.sh) to separate transfer time from waiting for slow ranks.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dist/communicator.hpp"

int main(int argc, char** argv) {
    rbm::MpiSession mpi(&argc, &argv);
    rbm::Communicator comm;
    const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 784 * 500 + 784 + 500;
    const int reps = argc > 2 ? std::atoi(argv[2]) : 200;
    std::vector<float> grad(n, 1.0f);
    double total = 0, best = 1e9;
    for (int r = -10; r < reps; ++r) {
        comm.barrier();
        const auto t0 = std::chrono::steady_clock::now();
        comm.allreduce_sum(grad.data(), n);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 0) {
            total += dt;
            best = std::min(best, dt);
        }
    }
    if (comm.is_root())
        std::printf("allreduce of %zu floats (%.2f MB) over %d rank(s): mean %.1f us, best %.1f us\n", n,
                    double(n) * 4 / 1e6, comm.size(), total / reps * 1e6, best * 1e6);
    return 0;
}
