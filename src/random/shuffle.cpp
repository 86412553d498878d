// Reproducible per-epoch shuffles (see shuffle.hpp).
#include "random/shuffle.hpp"

#include <numeric>
#include <utility>

#include "random/streams.hpp"
#include "util/check.hpp"

namespace rbm {

std::vector<uint32_t> epoch_order(std::size_t n_rows, uint32_t seed, uint32_t rank, uint64_t epoch) {
    RBM_CHECK(n_rows <= UINT32_MAX, "a shard of " << n_rows << " rows is too large to index");
    std::vector<uint32_t> order(n_rows);
    std::iota(order.begin(), order.end(), 0u);
    const Stream stream = Stream::make(seed, rank, Purpose::shuffle);
    for (std::size_t i = n_rows; i > 1; --i) {
        // A 32-bit word scaled to [0, i): Lemire's multiply-shift, bias below 2^-32 * i.
        const auto words = stream.block(epoch, 0, uint32_t((i - 1) >> 2));
        const uint64_t word = words.v[(i - 1) & 3u];
        const std::size_t j = std::size_t((word * uint64_t(i)) >> 32);
        std::swap(order[i - 1], order[j]);
    }
    return order;
}

}  // namespace rbm
