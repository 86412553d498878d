// The IDX half of the data readers (MNIST's format), kept apart from HDF5 so each
// format's byte-level checks read on their own. Used only by dataset.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/dataset.hpp"

namespace rbm::idx {

// Header only: dims of an IDX image file (3-D N x rows x cols or 2-D N x cols).
SourceInfo probe_images(const std::string& path);

// Rows of an IDX image file, pixel / 255. The whole file's size is checked, so every
// rank agrees on whether a file is good whatever rows it asks for.
Dataset read_images(const std::string& path, RowRange rows);

// Every label of an IDX label file (magic 0x00000801).
std::vector<uint8_t> read_labels(const std::string& path);

}  // namespace rbm::idx
