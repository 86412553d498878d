// Training and test data as rbm sees it: rows of pixels scaled to [0, 1], read from
// IDX (raw or .gz) or from a 2-D HDF5 dataset named `file.h5:/path/to/dataset`.
// Each MPI rank reads only its own rows, so a reader takes a row range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/dataset.hpp"

namespace rbm {

// Rows [begin, end) of a source; end = SIZE_MAX means "to the last row".
struct RowRange {
    std::size_t begin = 0;
    std::size_t end = SIZE_MAX;
};

// What a source holds, read from its header / metadata only.
struct SourceInfo {
    std::size_t n_rows = 0;
    std::size_t n_cols = 0;
    std::size_t image_height = 0, image_width = 0;
};

// dynamic: training rows binarised stochastically afresh every epoch (draw = epoch), a
// cheap augmentation against overfitting one fixed binarisation; every other use of the
// data (validation, test, evaluation) binarises once, as stochastic does (draw 0).
enum class Binarization { none, threshold, stochastic, dynamic };

struct BinarizeSpec {
    Binarization mode = Binarization::none;
    float threshold = 0.5f;   // threshold: x >= threshold -> 1
    uint32_t seed = 0;        // stochastic: x > u, u from Philox keyed (seed, binarize), counted by global row
};

// Header-only probe of a source: IDX file (raw or .gz) or "file.h5:/dataset".
SourceInfo probe_source(const std::string& spec);

// Reads rows of a source, scaled to [0, 1] (uint8 / 255; floats as they are) and
// validated: anything malformed is refused with rbm::Error naming the source and problem.
Dataset read_rows(const std::string& spec, RowRange rows = {});

// Labels from an IDX label file (magic 2049), raw or .gz.
std::vector<uint8_t> read_idx_labels(const std::string& path);

// Refuses a label file whose count differs from its image source's row count,
// naming both files (the readers cannot: each sees one file).
void check_labels_match(const std::string& images_spec, std::size_t n_images,
                        const std::string& labels_path, std::size_t n_labels);

// Applies binarisation in place. Stochastic draws depend only on (seed, global row,
// column), so every rank and every run binarises a given example identically.
void binarize(Dataset& data, const BinarizeSpec& spec);

// out = `gray` binarised stochastically with draw `draw` (the epoch, for dynamic
// binarisation); draw 0 is what binarize() gives. out's storage is reused.
void binarize_draw(const Dataset& gray, Dataset& out, uint32_t seed, uint32_t draw);


}  // namespace rbm
