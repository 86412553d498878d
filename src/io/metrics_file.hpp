// The metrics file: one row per measurement, appended as training runs, in one
// compound HDF5 dataset /metrics that h5py reads as a structured array
// (f["metrics"]["pseudo_likelihood"]). Flushed after every row.
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "io/h5.hpp"

namespace rbm {

struct MetricsRow {
    uint64_t step = 0;              // optimizer steps done when measured
    double epoch = 0;               // fractional epochs done
    double pseudo_likelihood = 0;   // tutorial's stochastic PL cost, mean over the steps since the last row
    double reconstruction_xent = 0; // mean-field reconstruction cross-entropy per example
    double free_energy_train = 0;   // mean free energy of a fixed training subset
    double free_energy_valid = 0;   // mean free energy of the validation set (NaN without one)
    double free_energy_gap = 0;     // free_energy_valid - free_energy_train
    double learning_rate = 0;
    double examples_per_s = 0;      // global (all ranks) training examples per second
    double wall_s = 0;              // seconds since this process started training
    // PT: the lowest fraction of swaps accepted between two neighbouring temperatures since
    // the last row, all ranks together (a value near 0 says the ladder is cut there). NaN
    // for other methods, and in rows of files written before this column existed.
    double swap_acceptance_min = std::nan("");
    // The ranks that trained the row's steps: the free energies' monitored subset and the
    // examples per second depend on it, and a run resumed on another count changes it.
    // NaN in rows of files written before this column existed.
    double ranks = std::nan("");
    // Which process of the run wrote the row: 1 for the one that started it, one more for
    // each resume (a crash, a requeue), so curves can mark where each began. NaN in rows
    // of files written before this column existed.
    double process = std::nan("");
};

class MetricsFile {
public:
    // Opens path for appending, creating it if absent. Rows with step > keep_until_step
    // are dropped (they were written after the checkpoint a resumed run starts from);
    // without keep_until_step (a fresh run) every old row is.
    MetricsFile(const std::string& path, std::optional<uint64_t> keep_until_step = UINT64_MAX);
    void append(const MetricsRow& row);
    uint64_t rows() const { return rows_; }
    // This writer's process number: one more than the kept rows' last (a file whose rows
    // predate the column counts as one process).
    double process() const { return process_; }
    const std::string& path() const { return path_; }

private:
    void write_last_row(const MetricsRow& row);  // row number rows_, of an extent already rows_ + 1
    std::string path_;
    h5::Handle file_, dataset_, type_;
    uint64_t rows_ = 0;
    double process_ = 1;
};

// Reads every row back (for tests, `rbm info`, tools).
std::vector<MetricsRow> read_metrics(const std::string& path);
// Fails where `path` exists and is not a metrics file MetricsFile may take over (another
// kind of file, a torn one): what opening it for writing would refuse, read only.
void check_metrics_writable(const std::string& path);

}  // namespace rbm
