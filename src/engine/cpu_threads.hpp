// The CPU engine's loop threads: one team per process that a training step's products
// and elementwise passes are split over by columns (cpu_kernels.hpp), started once and
// woken per pass, because a tutorial step's passes last microseconds and a thread pool
// with queues or std::async would cost more than the work.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

namespace rbm::cpu {

// The CPU engine's threads in this process (at least 1): with n > 1 a training step's
// products and elementwise passes are split by columns over n threads, each product
// part through single-threaded OpenBLAS. Results are the same for any n up to the last
// bits of OpenBLAS's sums. Not to be called inside parallel().
void set_threads(int n);
int threads();
// `rbm train --threads N` reaches the engine through OpenBLAS's thread count (set in
// cli/cmd_train.cpp, set_blas_threads): when OpenBLAS has N > 1 threads, the engine takes
// them as its loop threads (set_threads(N)) and leaves OpenBLAS one thread per call.
// Called at the start of a step; cheap.
void adopt_blas_threads();

// Runs fn(t, n) for t = 0 .. n - 1 on the n threads (t = 0 on the caller) and returns
// when all have; barrier() inside fn waits for all n. No allocation, no exceptions may
// leave fn.
void parallel_raw(void (*fn)(void* ctx, int t, int n), void* ctx);
template <typename Fn>
void parallel(Fn&& fn) {
    parallel_raw([](void* ctx, int t, int n) { (*static_cast<std::remove_reference_t<Fn>*>(ctx))(t, n); },
                 const_cast<void*>(static_cast<const void*>(&fn)));
}
void barrier();
// Thread t's share [begin, end) of [0, n) over `parts` threads, boundaries at multiples
// of 16 (64 bytes of floats: a cache line where rows are whole lines, as 784 visible
// units are).
std::pair<std::size_t, std::size_t> share(std::size_t n, int t, int parts);
// This thread's t in the running parallel() (0 outside one).
int thread_index();

}  // namespace rbm::cpu
