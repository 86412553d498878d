// Rows of data in memory, as every layer passes them: the readers (io) fill them, engines
// take a shard of them, evaluation measures them. No file or device knowledge here.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rbm {

struct Dataset {
    std::string source;          // the spec it was read from, for messages
    std::size_t n_rows = 0;      // rows held here
    std::size_t n_cols = 0;      // values per row (n_visible)
    std::size_t image_height = 0, image_width = 0;  // 28x28 for IDX images; 0 when not images
    std::size_t first_row = 0;   // global index (in the source) of the first row held
    std::vector<float> values;   // row-major [n_rows, n_cols], every value in [0, 1]

    const float* row(std::size_t i) const { return values.data() + i * n_cols; }
};

// True when every value is exactly 0 or 1 (engines then take faster paths for binary data).
inline bool is_binary(const Dataset& data) {
    for (float v : data.values)
        if (v != 0.0f && v != 1.0f) return false;
    return true;
}

}  // namespace rbm
