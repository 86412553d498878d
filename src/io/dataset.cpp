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
             " GiB of memory (fewer rows: rbm train and rbm transform read only the first N with --limit N)");
}

void refuse_zero_one_bytes(const Dataset& d) {
    const float one = 1.0f / 255.0f;
    bool any_one = false;
    for (float x : d.values) {
        if (x != 0.0f && x != one) return;
        any_one = any_one || x == one;
    }
    if (any_one)
        fail("'", d.source, "': every byte is 0 or 1, and rbm reads bytes as x/255 (these would be near-black "
             "images); store pixels as 0..255, or 0/1 values as float32 in HDF5 (FILE.h5:/dataset)");
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
// same as uniform_at(stream, global_row, draw, column) for each, at a quarter of the cost.
void binarize_stochastic(const float* gray, float* out, const Dataset& shape, uint32_t seed, uint32_t draw) {
    const Stream stream = Stream::make(seed, 0, Purpose::binarize);
    for (std::size_t i = 0; i < shape.n_rows; ++i) {
        const float* in_row = gray + i * shape.n_cols;
        float* out_row = out + i * shape.n_cols;
        const uint64_t global_row = shape.first_row + i;
        for (std::size_t c = 0; c < shape.n_cols; c += 4) {
            auto block = stream.block(global_row, draw, static_cast<uint32_t>(c >> 2));
            for (std::size_t k = 0; k < 4 && c + k < shape.n_cols; ++k)
                out_row[c + k] = in_row[c + k] > word_to_uniform(block.v[k]) ? 1.0f : 0.0f;
        }
    }
}

}  // namespace

void binarize(Dataset& data, const BinarizeSpec& spec) {
    switch (spec.mode) {
        case Binarization::none: return;
        case Binarization::threshold: binarize_threshold(data, spec.threshold); return;
        case Binarization::stochastic:
        case Binarization::dynamic:
            binarize_stochastic(data.values.data(), data.values.data(), data, spec.seed, 0);
            return;
    }
}

void binarize_draw(const Dataset& gray, Dataset& out, uint32_t seed, uint32_t draw) {
    out.source = gray.source;
    out.n_rows = gray.n_rows;
    out.n_cols = gray.n_cols;
    out.image_height = gray.image_height;
    out.image_width = gray.image_width;
    out.first_row = gray.first_row;
    out.values.resize(gray.values.size());
    binarize_stochastic(gray.values.data(), out.values.data(), gray, seed, draw);
}

}  // namespace rbm
