// The order in which a rank visits its shard in an epoch: a Fisher-Yates shuffle
// driven by Philox keyed (seed, rank, shuffle) and counted by the epoch, so any epoch's
// order can be recomputed on resume without stored generator state.
#pragma once

#include <cstdint>
#include <vector>

namespace rbm {

std::vector<uint32_t> epoch_order(std::size_t n_rows, uint32_t seed, uint32_t rank, uint64_t epoch);

}  // namespace rbm
