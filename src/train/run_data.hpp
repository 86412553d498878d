// Which rows each rank trains and monitors on. The training rows (after --limit and
// any held-out validation part) are cut into contiguous shards, one per rank, so a
// rank reads only its own rows from the file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dist/communicator.hpp"
#include "io/dataset.hpp"
#include "train/config.hpp"

namespace rbm {

struct RunData {
    Dataset shard;                // this rank's training rows
    Dataset gray_shard;           // --binarize dynamic: the shard's pixels, redrawn into `shard` every epoch
    uint64_t drawn_epoch = 0;     // --binarize dynamic: the epoch whose draw `shard` holds
    Dataset validation;           // this rank's part of the validation rows (may be empty)
    std::size_t train_rows = 0;   // training rows across all ranks
    std::size_t monitor_rows = 0; // rows of `shard` (from its start) used for the free-energy gap
    std::size_t steps_per_epoch = 0;
    std::size_t n_visible = 0;
    std::size_t image_height = 0, image_width = 0;
    // Of every rank's training rows as trained on (binarised, or the pixels under dynamic
    // binarisation), by global row: the same for the same data on any rank count; a
    // resume checks it against its checkpoint.
    uint64_t fingerprint = 0;
};

// Contiguous share r of n rows over `ranks` ranks: [r n / R, (r + 1) n / R).
RowRange shard_range(std::size_t n, int rank, int ranks, std::size_t offset = 0);

RunData load_run_data(const TrainConfig& config, const Communicator& comm);

// Sum over rows of a 64-bit hash of (global row index, the row's values): rows may be
// hashed in any shards and the sums added.
uint64_t rows_fingerprint(const Dataset& rows, std::size_t first_global_row);

// --binarize dynamic: `shard` becomes epoch `epoch`'s binarisation of `gray_shard`.
// Returns whether `shard` changed: false when it holds that draw already, and for every
// other binarisation.
bool redraw_shard(RunData& data, const TrainConfig& config, uint64_t epoch);

}  // namespace rbm
