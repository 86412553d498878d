// How long this process has run: --max-hours counts from its start, as a batch job's time
// limit counts everything the process does (loading data, a resume's checkpoint), not
// only training. Taken during static initialisation, before main.
#pragma once

#include <chrono>

namespace rbm {

inline const std::chrono::steady_clock::time_point kProcessStart = std::chrono::steady_clock::now();

inline double seconds_since_process_start() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - kProcessStart).count();
}

}  // namespace rbm
