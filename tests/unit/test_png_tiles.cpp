// Filter pictures are compared by eye with the Theano tutorial's, so tile_images must
// match tile_raster_images exactly; the expected grids below were computed by hand and
// checked against tile_raster_images itself under NumPy 1.24.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "io/png_tiles.hpp"
#include "util/check.hpp"

namespace fs = std::filesystem;
using namespace rbm;

namespace {

std::string fresh_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path dir = fs::path(RBM_TEST_TMP) / ("png_tiles_" + std::to_string(::getpid())) / info->name();
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

// 2x2 tiles of 2x3 images with spacing 1: output is 5x7; three images, so the last tile stays 0.
TEST(TileImages, UnscaledTruncatesTimes255) {
    const float images[] = {0, 0.5f, 1, 0.25f, 0.75f, 0.1f,  //
                            1, 1, 1, 0, 0, 0,                //
                            0.2f, 0.4f, 0.6f, 0.8f, 0.9f, 0.3f};
    GrayImage img = tile_images(images, 3, 2, 3, 2, 2, 1, false);
    ASSERT_EQ(img.height, 5u);
    ASSERT_EQ(img.width, 7u);
    const std::vector<uint8_t> expected = {
        0,   127, 255, 0, 255, 255, 255,  //
        63,  191, 25,  0, 0,   0,   0,    //
        0,   0,   0,   0, 0,   0,   0,    //
        51,  102, 153, 0, 0,   0,   0,    //
        204, 229, 76,  0, 0,   0,   0,
    };
    EXPECT_EQ(img.pixels, expected);
}

TEST(TileImages, ScaleEachUsesEachImagesOwnRange) {
    const float images[] = {-1, 0, 1, 2, 3, 4,  // range 5: steps of 51
                            2, 2, 2, 2, 2, 2,   // constant: (x - min) = 0, so black
                            0, 1, 3, 7, 0, 7,   // range 7: 255/7 = 36.43 per unit, truncated
                            0.1f, 0.2f, 0.3f, -0.4f, 5e-3f, 1e4f};  // one outlier flattens the rest
    GrayImage img = tile_images(images, 4, 2, 3, 2, 2, 1, true);
    const std::vector<uint8_t> expected = {
        0,   51, 102, 0, 0, 0, 0,    //
        153, 204, 255, 0, 0, 0, 0,   //
        0,   0,  0,   0, 0, 0, 0,    //
        0,   36, 109, 0, 0, 0, 0,    //
        255, 0,  255, 0, 0, 0, 255,
    };
    EXPECT_EQ(img.pixels, expected);
}

TEST(TileImages, NoSpacingAndOutOfRangeValuesClamp) {
    const float images[] = {-0.5f, 2.0f, 0.5f, 1.0f};
    GrayImage img = tile_images(images, 4, 1, 1, 2, 2, 0, false);
    ASSERT_EQ(img.width, 2u);
    ASSERT_EQ(img.height, 2u);
    EXPECT_EQ(img.pixels, (std::vector<uint8_t>{0, 255, 127, 255}));
}

TEST(Png, RoundTripAndErrors) {
    std::string dir = fresh_dir(), path = dir + "/tiles.png";
    GrayImage img;
    img.width = 29;
    img.height = 13;
    for (std::size_t i = 0; i < img.width * img.height; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 37));
    write_png(path, img);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    GrayImage back = read_png(path);
    EXPECT_EQ(back.width, img.width);
    EXPECT_EQ(back.height, img.height);
    EXPECT_EQ(back.pixels, img.pixels);

    std::string bad_dir = dir + "/missing/x.png";
    std::string msg = error_of([&] { write_png(bad_dir, img); });
    EXPECT_NE(msg.find(bad_dir), std::string::npos) << msg;

    std::string text = dir + "/text.png";
    std::ofstream(text) << "definitely not a png";
    msg = error_of([&] { read_png(text); });
    EXPECT_NE(msg.find("'" + text + "': not a PNG file"), std::string::npos) << msg;

    // A PNG cut short: libpng's error comes back as an rbm::Error naming the file.
    fs::copy_file(path, dir + "/cut.png");
    fs::resize_file(dir + "/cut.png", fs::file_size(path) / 2);
    msg = error_of([&] { read_png(dir + "/cut.png"); });
    EXPECT_NE(msg.find("cannot read PNG '" + dir + "/cut.png'"), std::string::npos) << msg;

    GrayImage empty;
    msg = error_of([&] { write_png(dir + "/empty.png", empty); });
    EXPECT_NE(msg.find("the image is empty"), std::string::npos) << msg;
}
