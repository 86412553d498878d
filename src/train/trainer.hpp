// The training loop: data-parallel CD-k / PCD-k / parallel tempering over MPI ranks, with metrics,
// checkpoints and images at the cadence the configuration sets.
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "dist/communicator.hpp"
#include "io/checkpoint.hpp"
#include "train/config.hpp"

namespace rbm {

// Trains (or continues, when `resume_from` holds the checkpoint rank 0 read) the run
// described by `config`. Every rank calls it; rank 0 alone writes files and `log`. With
// `dry_run`, every check a start makes, then what the run would do, in `log`; nothing written.
void train(const TrainConfig& config, const Communicator& comm, std::optional<Checkpoint> resume_from,
           std::ostream& log, bool dry_run = false);

}  // namespace rbm
