// Small rules every data reader shares (row ranges, image shape, size arithmetic), so
// IDX and HDF5 inputs refuse the same things with the same words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/dataset.hpp"

namespace rbm::data {

// [begin, end) of `rows` against a source of n_total rows; SIZE_MAX end means "to the
// last row". A range reaching past the data is refused, naming the source.
RowRange resolve_rows(const std::string& source, std::size_t n_total, RowRange rows);

// a * b, refused when it overflows size_t; `shape` is the source's dims as text.
std::size_t checked_mul(const std::string& source, std::size_t a, std::size_t b, const std::string& shape);

// For flat rows of n_cols values: a square image side when n_cols is a perfect square, else 0.
std::size_t square_side(std::size_t n_cols);

// Whether an image shape stored with data or a model fits rows of n_cols values: height x
// width = n_cols, or 0 x 0 for data that are not images (the product checked without overflow).
inline bool image_shape_fits(uint64_t height, uint64_t width, uint64_t n_cols) {
    if (height == 0 || width == 0) return height == 0 && width == 0;
    return width <= n_cols / height && height * width == n_cols;
}

// Refuses a source with no rows or no columns.
void check_not_empty(const std::string& source, std::size_t n_rows, std::size_t n_cols);

// Bytes of physical memory of this machine (SIZE_MAX when unknown).
std::size_t physical_memory();

// Refuses, before allocating, n_rows x n_cols floats that this machine's memory cannot hold.
void check_fits_in_memory(const std::string& source, std::size_t n_rows, std::size_t n_cols);

// Bytes are read as x/255. Rows of bytes that are all 0 or 1 (binarised pixels stored as
// bytes) would become near-black images, so they are refused, naming the source.
void refuse_zero_one_bytes(const Dataset& bytes_scaled);

}  // namespace rbm::data
