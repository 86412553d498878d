// Elapsed seconds on the steady clock, and since when this process has run: --max-hours
// counts from the process's start, as a batch job's time limit counts everything the
// process does (loading data, a resume's checkpoint), not only training.
#pragma once

#include <chrono>

namespace rbm {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Taken during static initialisation, before main.
inline const Clock::time_point kProcessStart = Clock::now();

inline double seconds_since_process_start() { return seconds_since(kProcessStart); }

}  // namespace rbm
