// The CPU engine's loop threads for the scope of a test.
#pragma once

#include <cblas.h>

#include "engine/cpu_kernels.hpp"

namespace rbm::test {

struct ThreadsGuard {  // exactly n loop threads (OpenBLAS 1), one again after the test
    explicit ThreadsGuard(int n) {
        openblas_set_num_threads(1);
        cpu::set_threads(n);
    }
    ~ThreadsGuard() { cpu::set_threads(1); }
};

}  // namespace rbm::test
