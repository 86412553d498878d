// What a training run leaves in its run directory, written by rank 0 alone:
//   config.ini                 the effective configuration
//   checkpoints/step-N.h5      checkpoints (the newest --keep-checkpoints kept)
//   metrics.h5                 one row per measurement
//   filters/epoch-NNNN.png     the first 100 filters, tiled as the tutorial does
//   samples/epoch-NNNN.h5|png  the persistent chains' samples (--sample-every)
// Collective methods are called by every rank; the others only matter on rank 0.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "dist/communicator.hpp"
#include "engine/engine.hpp"
#include "io/checkpoint.hpp"
#include "io/dir_lock.hpp"
#include "io/metrics_file.hpp"
#include "train/config.hpp"
#include "train/run_data.hpp"

namespace rbm {

class RunOutputs {
public:
    RunOutputs(const TrainConfig& config, const Communicator& comm, const RunData& data);
    // Creates the run directory and locks it for this run (rank 0), before anything is
    // written in it: a second rbm train in the same directory is refused.
    void prepare();
    // What prepare() and the first writes would refuse (a foreign config.ini, a folder that
    // cannot be made or written, a lock another run holds), creating nothing (--dry-run).
    void check_writable() const;
    // Writes config.ini atomically (rank 0), once the run has started or resumed.
    void write_config();

    // Rows after keep_until_step are dropped (a resumed run rewrites them); a fresh run
    // (no step to keep) starts an empty table.
    void open_metrics(std::optional<uint64_t> keep_until_step);
    void append_metrics(MetricsRow row, bool epoch_row);  // stamped with the rank count and this process's number
    void write_checkpoint(const Checkpoint& ckpt);                  // rank 0
    void write_filters(const Engine& engine, uint64_t epoch);       // every rank
    void write_chain_samples(Engine& engine, uint64_t epoch, uint64_t step);  // collective
    void print_summary(std::ostream& out) const;

private:
    void refuse_foreign_config() const;
    void refuse_foreign_files() const;
    std::vector<std::string> run_folders() const;

    const TrainConfig& config_;
    const Communicator& comm_;
    std::size_t image_height_, image_width_;  // the data's (0 x 0: not images, no filters)
    std::unique_ptr<DirLock> lock_;
    std::unique_ptr<MetricsFile> metrics_;
};

}  // namespace rbm
