// Filter and sample pictures are how people compare this rbm with the Theano tutorial,
// so tiling follows tile_raster_images pixel for pixel, including its float32 arithmetic
// and truncation to uint8. PNG I/O uses libpng's setjmp error handling, kept in small
// functions with only plain locals so a longjmp skips no destructor.
#include "io/png_tiles.hpp"

#include <png.h>

#include <algorithm>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "io/h5.hpp"
#include "util/check.hpp"

namespace rbm {

namespace {

// tile_raster_images(..., output_pixel_vals=True): scale_to_unit_interval works in the
// array's float32, with the reciprocal 1.0 / (max + 1e-8) computed in double (NumPy 1.x
// scalar promotion), then `img * 255` is cast to uint8, which truncates.
void draw_tile(const float* x, std::size_t n, bool scale_each, float* img) {
    std::copy(x, x + n, img);
    if (scale_each) {
        float lo = *std::min_element(img, img + n);
        for (std::size_t i = 0; i < n; ++i) img[i] -= lo;
        float hi = *std::max_element(img, img + n);
        float factor = static_cast<float>(1.0 / (static_cast<double>(hi) + 1e-8));
        for (std::size_t i = 0; i < n; ++i) img[i] *= factor;
    }
}

uint8_t to_pixel(float v) {
    float p = v * 255.0f;
    // NumPy's out-of-range float->uint8 cast is undefined; clamp so garbage input stays visible.
    if (!(p > 0.0f)) return 0;
    if (p >= 255.0f) return 255;
    return static_cast<uint8_t>(p);
}

struct PngError {
    std::jmp_buf jump;
    char message[256] = "";
};

void on_png_error(png_structp png, png_const_charp msg) {
    auto* err = static_cast<PngError*>(png_get_error_ptr(png));
    std::snprintf(err->message, sizeof err->message, "%s", msg);
    std::longjmp(err->jump, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_or_fail(const std::string& path, const char* mode, const char* purpose) {
    FilePtr f(std::fopen(path.c_str(), mode));
    RBM_CHECK(f, "cannot open '" << path << "' for " << purpose << ": " << std::strerror(errno));
    return f;
}

// Returns an empty string on success, else libpng's complaint.
std::string encode_png(std::FILE* fp, const GrayImage& image, png_bytep* rows) {
    PngError err;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
    if (!png) return "out of memory";
    png_infop info = png_create_info_struct(png);
    if (setjmp(err.jump)) {
        png_destroy_write_struct(&png, &info);
        return err.message;
    }
    if (!info) png_error(png, "out of memory");
    png_init_io(png, fp);
    png_set_IHDR(png, info, static_cast<png_uint_32>(image.width), static_cast<png_uint_32>(image.height), 8,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return "";
}

// Reads the header into `image` (sizes) and then the rows; "" on success.
std::string decode_png(std::FILE* fp, GrayImage& image) {
    PngError err;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, on_png_error, on_png_warning);
    if (!png) return "out of memory";
    png_infop info = png_create_info_struct(png);
    if (setjmp(err.jump)) {
        png_destroy_read_struct(&png, &info, nullptr);
        return err.message;
    }
    if (!info) png_error(png, "out of memory");
    png_init_io(png, fp);
    png_read_info(png, info);
    if (png_get_bit_depth(png, info) != 8 || png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY)
        png_error(png, "not an 8-bit grey PNG");
    image.width = png_get_image_width(png, info);
    image.height = png_get_image_height(png, info);
    image.pixels.resize(image.width * image.height);  // before any further longjmp can happen
    for (std::size_t y = 0; y < image.height; ++y) png_read_row(png, &image.pixels[y * image.width], nullptr);
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return "";
}

}  // namespace

GrayImage tile_images(const float* data, std::size_t count, std::size_t img_h, std::size_t img_w,
                      std::size_t tile_rows, std::size_t tile_cols, std::size_t spacing,
                      bool scale_each) {
    GrayImage out;
    RBM_CHECK(tile_rows > 0 && tile_cols > 0 && img_h > 0 && img_w > 0, "tile_images: empty grid or image");
    out.height = (img_h + spacing) * tile_rows - spacing;
    out.width = (img_w + spacing) * tile_cols - spacing;
    out.pixels.assign(out.height * out.width, 0);
    const std::size_t n = img_h * img_w;
    std::vector<float> img(n);
    for (std::size_t t = 0; t < std::min(count, tile_rows * tile_cols); ++t) {
        draw_tile(data + t * n, n, scale_each, img.data());
        std::size_t top = (t / tile_cols) * (img_h + spacing), left = (t % tile_cols) * (img_w + spacing);
        for (std::size_t y = 0; y < img_h; ++y)
            for (std::size_t x = 0; x < img_w; ++x)
                out.pixels[(top + y) * out.width + left + x] = to_pixel(img[y * img_w + x]);
    }
    return out;
}

void write_png(const std::string& path, const GrayImage& image) {
    RBM_CHECK(image.pixels.size() == image.width * image.height,
              "image for '" << path << "' has " << image.pixels.size() << " pixels, expected "
                            << image.width << "x" << image.height);
    RBM_CHECK(image.width > 0 && image.height > 0, "cannot write '" << path << "': the image is empty");
    std::vector<png_bytep> rows(image.height);
    for (std::size_t y = 0; y < image.height; ++y)
        rows[y] = const_cast<png_bytep>(&image.pixels[y * image.width]);
    h5::write_atomically(path, [&](const std::string& tmp) {
        FilePtr fp = open_or_fail(tmp, "wb", "writing");
        std::string problem = encode_png(fp.get(), image, rows.data());
        RBM_CHECK(problem.empty(), "cannot write PNG '" << path << "': " << problem);
        RBM_CHECK(std::fflush(fp.get()) == 0, "cannot write PNG '" << path << "': " << std::strerror(errno));
        int rc = std::fclose(fp.release());
        RBM_CHECK(rc == 0, "cannot write PNG '" << path << "': " << std::strerror(errno));
    });
}

GrayImage read_png(const std::string& path) {
    FilePtr fp = open_or_fail(path, "rb", "reading");
    png_byte signature[8] = {};
    bool is_png = std::fread(signature, 1, 8, fp.get()) == 8 && png_sig_cmp(signature, 0, 8) == 0;
    RBM_CHECK(is_png, "cannot read '" << path << "': not a PNG file");
    std::rewind(fp.get());
    GrayImage image;
    std::string problem = decode_png(fp.get(), image);
    RBM_CHECK(problem.empty(), "cannot read PNG '" << path << "': " << problem);
    return image;
}

}  // namespace rbm
