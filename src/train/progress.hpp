// Rank 0's progress report. On a terminal: one bar redrawn in place (epoch, step,
// examples/s, ETA, the latest metrics). In a batch log (no terminal): a plain line
// every `interval_s` seconds, so a Slurm output file shows progress without bars.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

#include "util/clock.hpp"

namespace rbm {

class Progress {
public:
    Progress(std::ostream& out, bool terminal, double interval_s, uint64_t total_steps, uint64_t steps_per_epoch,
             uint64_t global_batch);

    // Called after every step; cheap unless it is time to draw. `step` counts the
    // optimizer steps taken (what the metrics and checkpoints say); `position` counts
    // them in this run's steps per epoch, which differ from step only after a resume
    // on another number of ranks changed an epoch's length (total_steps is in these).
    void tick(uint64_t step, uint64_t position);
    // The latest metrics row, shown in the bar (pseudo-likelihood, reconstruction).
    void set_metrics(double pseudo_likelihood, double reconstruction_xent);
    // Clears the bar before other output is printed (a no-op off a terminal).
    void clear();

private:
    std::string line(uint64_t step, uint64_t position) const;

    std::ostream& out_;
    bool terminal_;
    double interval_s_;
    uint64_t total_steps_, steps_per_epoch_, global_batch_;
    Clock::time_point start_ = Clock::now(), last_draw_ = Clock::now();
    uint64_t start_position_ = UINT64_MAX;  // the position of the first tick, where the rate is measured from
    double pseudo_likelihood_ = 0, reconstruction_xent_ = 0;
    bool have_metrics_ = false, drawn_ = false;
};

}  // namespace rbm
