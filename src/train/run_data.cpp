// Sharded loading of training and validation rows (see run_data.hpp).
#include "train/run_data.hpp"

#include <algorithm>
#include <cstring>

#include "util/check.hpp"

namespace rbm {

RowRange shard_range(std::size_t n, int rank, int ranks, std::size_t offset) {
    return {offset + n * std::size_t(rank) / std::size_t(ranks),
            offset + n * std::size_t(rank + 1) / std::size_t(ranks)};
}

namespace {
// splitmix64's finaliser: every input bit moves about half the output bits.
uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
}  // namespace

uint64_t rows_fingerprint(const Dataset& rows, std::size_t first_global_row) {
    uint64_t total = 0;
    for (std::size_t r = 0; r < rows.n_rows; ++r) {
        const float* row = rows.values.data() + r * rows.n_cols;
        uint64_t h = mix(uint64_t(first_global_row + r) + 0x9e3779b97f4a7c15ull);
        for (std::size_t c = 0; c < rows.n_cols; ++c) {
            uint32_t bits;
            std::memcpy(&bits, row + c, sizeof bits);
            h = (h ^ bits) * 0x100000001b3ull;  // FNV-1a's step, a word at a time
        }
        total += mix(h);
    }
    return total;
}

namespace {
Dataset read_prepared(const std::string& spec, RowRange range, const BinarizeSpec& binarization) {
    Dataset d = read_rows(spec, range);
    binarize(d, binarization);
    return d;
}
}  // namespace

RunData load_run_data(const TrainConfig& c, const Communicator& comm) {
    const SourceInfo info = probe_source(c.data);
    std::size_t total = c.limit ? std::min(c.limit, info.n_rows) : info.n_rows;
    const std::size_t held_out = std::size_t(double(total) * c.validation_fraction);
    if (c.validation_fraction > 0 && held_out == 0)
        fail("--validation-fraction ", c.validation_fraction, " of ", total,
             " examples holds out none; raise it, or give --test-data");
    RunData d;
    d.train_rows = total - held_out;
    d.n_visible = info.n_cols;
    d.image_height = info.image_height;
    d.image_width = info.image_width;

    const std::size_t ranks = std::size_t(comm.size());
    const std::size_t smallest_shard = d.train_rows / ranks;
    d.steps_per_epoch = smallest_shard / c.batch_size;
    if (d.steps_per_epoch == 0)
        fail("--batch-size ", c.batch_size, " is larger than a rank's share of the training data (",
             smallest_shard, " of ", d.train_rows, " rows in ", c.data, " over ", ranks, " rank(s))");

    const RowRange mine = shard_range(d.train_rows, comm.rank(), comm.size());
    if (c.binarize.mode == Binarization::dynamic) {
        d.gray_shard = read_rows(c.data, mine);
        binarize_draw(d.gray_shard, d.shard, c.binarize.seed, 0);
    } else {
        d.shard = read_prepared(c.data, mine, c.binarize);
    }
    d.fingerprint = comm.allreduce_sum(
        rows_fingerprint(c.binarize.mode == Binarization::dynamic ? d.gray_shard : d.shard, mine.begin));

    const std::size_t monitor_per_rank = std::max<std::size_t>(1, c.monitor_examples / ranks);
    d.monitor_rows = std::min(monitor_per_rank, d.shard.n_rows);

    // Validation: each rank reads the start of its share, up to its monitoring quota.
    std::string valid_spec;
    std::size_t valid_rows = 0, valid_offset = 0;
    if (!c.test_data.empty()) {
        valid_spec = c.test_data;
        const SourceInfo vinfo = probe_source(c.test_data);
        if (vinfo.n_cols != info.n_cols)
            fail(c.test_data, " has ", vinfo.n_cols, " values per example but ", c.data, " has ", info.n_cols);
        valid_rows = vinfo.n_rows;
    } else if (held_out > 0) {
        valid_spec = c.data;
        valid_rows = held_out;
        valid_offset = d.train_rows;
    }
    if (!valid_spec.empty()) {
        RowRange r = shard_range(valid_rows, comm.rank(), comm.size(), valid_offset);
        r.end = std::min(r.end, r.begin + monitor_per_rank);
        if (r.end > r.begin) d.validation = read_prepared(valid_spec, r, c.binarize);
    }
    return d;
}

bool redraw_shard(RunData& data, const TrainConfig& config, uint64_t epoch) {
    if (config.binarize.mode != Binarization::dynamic || epoch == data.drawn_epoch) return false;
    binarize_draw(data.gray_shard, data.shard, config.binarize.seed, uint32_t(epoch));
    data.drawn_epoch = epoch;
    return true;
}

}  // namespace rbm
