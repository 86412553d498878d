// The data readers' front door: picks the format from the spec ("file.h5:/dataset"
// is HDF5, anything else IDX), and holds what the formats share: row-range rules,
// size checks and binarisation, so both formats behave identically.
#include "io/dataset.hpp"

#include <cmath>
#include <cstdint>
#include <string>

#include <unistd.h>

#include "io/data_rows.hpp"
#include "io/hdf5_input.hpp"
#include "io/idx_reader.hpp"
#include "random/streams.hpp"
#include "util/check.hpp"

namespace rbm {

namespace data {

RowRange resolve_rows(const std::string& source, std::size_t n_total, RowRange rows) {
    RowRange r{rows.begin, rows.end == SIZE_MAX ? n_total : rows.end};
    if (r.begin > r.end || r.end > n_total)
        fail("'", source, "': rows ", rows.begin, "..",
             rows.end == SIZE_MAX ? std::string("end") : std::to_string(rows.end),
             " are beyond the data (it has ", n_total, " rows)");
    return r;
}

std::size_t checked_mul(const std::string& source, std::size_t a, std::size_t b, const std::string& shape) {
    std::size_t out = 0;
    if (__builtin_mul_overflow(a, b, &out))
        fail("'", source, "': dimensions ", shape, " overflow the size type: too large to be real data");
    return out;
}

std::size_t square_side(std::size_t n_cols) {
    auto side = static_cast<std::size_t>(std::llround(std::sqrt(static_cast<double>(n_cols))));
    return side * side == n_cols ? side : 0;
}

void check_not_empty(const std::string& source, std::size_t n_rows, std::size_t n_cols) {
    if (n_rows == 0 || n_cols == 0)
        fail("'", source, "': empty: ", n_rows, " rows of ", n_cols, " columns");
}

std::size_t physical_memory() {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0) return SIZE_MAX;
    return std::size_t(pages) * std::size_t(page);
}

void check_fits_in_memory(const std::string& source, std::size_t n_rows, std::size_t n_cols) {
    const double bytes = 4.0 * double(n_rows) * double(n_cols), have = double(physical_memory());
    if (bytes > have)
        fail("'", source, "': ", n_rows, " rows of ", n_cols, " values need ", bytes / double(1ull << 30),
             " GiB as floats, more than this machine's ", have / double(1ull << 30),
             " GiB of memory (--limit trains on fewer rows)");
}

}  // namespace data

SourceInfo probe_source(const std::string& spec) {
    if (h5in::split_spec(spec)) return h5in::probe(spec);
    return idx::probe_images(spec);
}

Dataset read_rows(const std::string& spec, RowRange rows) {
    if (h5in::split_spec(spec)) return h5in::read(spec, rows);
    return idx::read_images(spec, rows);
}

std::vector<uint8_t> read_idx_labels(const std::string& path) { return idx::read_labels(path); }

void check_labels_match(const std::string& images_spec, std::size_t n_images,
                        const std::string& labels_path, std::size_t n_labels) {
    if (n_images != n_labels)
        fail("labels ", labels_path, " hold ", n_labels, " labels but images ", images_spec, " hold ",
             n_images, " rows: the counts must match");
}

namespace {

void binarize_threshold(Dataset& data, float threshold) {
    for (float& v : data.values) v = v >= threshold ? 1.0f : 0.0f;
}

// One Philox block gives the uniforms of four consecutive columns; the result is the
// same as uniform_at(stream, global_row, 0, column) for each, at a quarter of the cost.
void binarize_stochastic(Dataset& data, uint32_t seed) {
    const Stream stream = Stream::make(seed, 0, Purpose::binarize);
    for (std::size_t i = 0; i < data.n_rows; ++i) {
        float* row = data.values.data() + i * data.n_cols;
        const uint64_t global_row = data.first_row + i;
        for (std::size_t c = 0; c < data.n_cols; c += 4) {
            auto block = stream.block(global_row, 0, static_cast<uint32_t>(c >> 2));
            for (std::size_t k = 0; k < 4 && c + k < data.n_cols; ++k)
                row[c + k] = row[c + k] > word_to_uniform(block.v[k]) ? 1.0f : 0.0f;
        }
    }
}

}  // namespace

void binarize(Dataset& data, const BinarizeSpec& spec) {
    switch (spec.mode) {
        case Binarization::none: return;
        case Binarization::threshold: binarize_threshold(data, spec.threshold); return;
        case Binarization::stochastic: binarize_stochastic(data, spec.seed); return;
    }
}

bool is_binary(const Dataset& data) {
    for (float v : data.values)
        if (v != 0.0f && v != 1.0f) return false;
    return true;
}

}  // namespace rbm
