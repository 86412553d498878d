// Images of filters and samples, tiled as the Theano tutorial's tile_raster_images
// draws them, written as 8-bit grey PNG through libpng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rbm {

struct GrayImage {
    std::size_t width = 0, height = 0;
    std::vector<uint8_t> pixels;  // row-major [height, width]
};

// Tiles `count` images of img_h x img_w floats (row i at data + i*img_h*img_w) into a
// grid of tile_rows x tile_cols with `spacing` black pixels between tiles, exactly as
// tile_raster_images does: when scale_each is true every image is scaled to [0, 1] by
// its own min and max (+1e-8), else values are taken as already in [0, 1]. Missing
// tiles stay black.
GrayImage tile_images(const float* data, std::size_t count, std::size_t img_h, std::size_t img_w,
                      std::size_t tile_rows, std::size_t tile_cols, std::size_t spacing,
                      bool scale_each);

// Writes an 8-bit grey PNG atomically (temporary name, rename); errors name the path.
void write_png(const std::string& path, const GrayImage& image);

// Reads an 8-bit grey PNG (for tests and tools).
GrayImage read_png(const std::string& path);

}  // namespace rbm
