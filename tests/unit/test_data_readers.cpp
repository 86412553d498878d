// Tests of the data readers (IDX raw/gzip, HDF5 datasets, binarisation): good files
// read exactly, and every malformed input is refused with a message that names the
// file and the problem, since that message is all a user sees.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "io/dataset.hpp"
#include "io/h5.hpp"
#include "train/run_data.hpp"
#include "random/streams.hpp"
#include "util/check.hpp"

namespace fs = std::filesystem;
using namespace rbm;

namespace {

using Bytes = std::vector<uint8_t>;

// A fresh folder per test under the build tree's tmp dir, removed afterwards.
class DataTmp : public ::testing::Test {
protected:
    void SetUp() override {
        static int counter = 0;
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        dir_ = fs::path(RBM_TEST_TMP) / ("data_readers_" + std::to_string(getpid()) + "_" +
                                         std::to_string(counter++) + "_" + info->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ec;
        if (!HasFailure()) fs::remove_all(dir_, ec);  // kept on failure, to look at
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    fs::path dir_;
};

// ---- file builders ----

void put_be32(Bytes& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

Bytes idx_file(uint32_t magic, std::initializer_list<uint32_t> dims, const Bytes& data) {
    Bytes out;
    put_be32(out, magic);
    for (uint32_t d : dims) put_be32(out, d);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// A recognisable pixel value for (row, column), so row ranges can be checked exactly.
uint8_t pixel(std::size_t row, std::size_t col) { return static_cast<uint8_t>((row * 31 + col * 7) % 256); }

Bytes pixels(std::size_t rows, std::size_t cols) {
    Bytes out;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) out.push_back(pixel(r, c));
    return out;
}

void write_raw(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << path;
}

void write_gz(const std::string& path, const Bytes& bytes) {
    gzFile gz = gzopen(path.c_str(), "wb");
    ASSERT_NE(gz, nullptr) << path;
    if (!bytes.empty()) {
        ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
                  static_cast<int>(bytes.size()));
    }
    ASSERT_EQ(gzclose(gz), Z_OK);
}

Bytes read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes one dataset (intermediate groups created) into a new HDF5 file.
void write_h5(const std::string& path, const std::string& name, hid_t file_type, hid_t mem_type,
              const std::vector<hsize_t>& dims, const void* data, bool chunked = false) {
    hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    ASSERT_GE(space, 0);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    ASSERT_GE(H5Pset_create_intermediate_group(lcpl, 1), 0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
        std::vector<hsize_t> chunk(dims.size(), 1);
        chunk.back() = std::max<hsize_t>(1, std::min<hsize_t>(16, dims.back()));
        ASSERT_GE(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()), 0);
    }
    hid_t dset = H5Dcreate2(file, name.c_str(), file_type, space, lcpl, dcpl, H5P_DEFAULT);
    ASSERT_GE(dset, 0);
    if (data) {
        ASSERT_GE(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    }
    ASSERT_GE(H5Dclose(dset), 0);
    ASSERT_GE(H5Pclose(dcpl), 0);
    ASSERT_GE(H5Pclose(lcpl), 0);
    ASSERT_GE(H5Sclose(space), 0);
    ASSERT_GE(H5Fclose(file), 0);
}

void write_h5_floats(const std::string& path, const std::string& name, const std::vector<hsize_t>& dims,
                     const std::vector<float>& v) {
    write_h5(path, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, v.data());
}

// Runs `f` and checks it throws rbm::Error whose message holds every word given.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> words) {
    try {
        f();
        ADD_FAILURE() << "no rbm::Error thrown; expected one mentioning " << *words.begin();
    } catch (const Error& e) {
        std::string msg = e.what();
        for (const auto& w : words) EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' not in: " << msg;
    }
}

void expect_pixels(const Dataset& d, std::size_t first_row) {
    for (std::size_t i = 0; i < d.n_rows; ++i)
        for (std::size_t c = 0; c < d.n_cols; ++c)
            ASSERT_FLOAT_EQ(d.row(i)[c], pixel(first_row + i, c) / 255.0f) << "row " << i << " col " << c;
}

}  // namespace

// ================= IDX: good files =================

class IdxReader : public DataTmp {
protected:
    // 5 images of 3 x 4, raw and gzip (the gzip one without a .gz name: detected by magic).
    void SetUp() override {
        DataTmp::SetUp();
        good_ = idx_file(0x803, {5, 3, 4}, pixels(5, 12));
        write_raw(path("img.idx"), good_);
        write_gz(path("img_compressed.idx"), good_);
    }
    Bytes good_;
};

TEST_F(IdxReader, ReadsRawAndGzipImagesScaled) {
    for (const std::string name : {"img.idx", "img_compressed.idx"}) {
        Dataset d = read_rows(path(name));
        EXPECT_EQ(d.n_rows, 5u);
        EXPECT_EQ(d.n_cols, 12u);
        EXPECT_EQ(d.image_height, 3u);
        EXPECT_EQ(d.image_width, 4u);
        EXPECT_EQ(d.first_row, 0u);
        EXPECT_EQ(d.source, path(name));
        expect_pixels(d, 0);
        SourceInfo info = probe_source(path(name));
        EXPECT_EQ(info.n_rows, 5u);
        EXPECT_EQ(info.n_cols, 12u);
        EXPECT_EQ(info.image_height, 3u);
        EXPECT_EQ(info.image_width, 4u);
    }
}

TEST_F(IdxReader, ReadsOnlyTheRowRange) {
    for (const std::string name : {"img.idx", "img_compressed.idx"}) {
        Dataset d = read_rows(path(name), {1, 4});
        EXPECT_EQ(d.n_rows, 3u);
        EXPECT_EQ(d.first_row, 1u);
        expect_pixels(d, 1);
        Dataset tail = read_rows(path(name), {3, SIZE_MAX});
        EXPECT_EQ(tail.n_rows, 2u);
        expect_pixels(tail, 3);
        EXPECT_EQ(read_rows(path(name), {5, 5}).n_rows, 0u);  // empty but within the data
    }
}

TEST_F(IdxReader, ReadsTwoDimensionalIdx) {
    write_raw(path("flat16.idx"), idx_file(0x802, {3, 16}, pixels(3, 16)));
    Dataset d = read_rows(path("flat16.idx"));
    EXPECT_EQ(d.n_rows, 3u);
    EXPECT_EQ(d.n_cols, 16u);
    EXPECT_EQ(d.image_height, 4u);  // 16 is a square
    EXPECT_EQ(d.image_width, 4u);
    expect_pixels(d, 0);
    write_gz(path("flat10.idx.gz"), idx_file(0x802, {2, 10}, pixels(2, 10)));
    SourceInfo info = probe_source(path("flat10.idx.gz"));
    EXPECT_EQ(info.n_cols, 10u);
    EXPECT_EQ(info.image_height, 0u);
}

TEST_F(IdxReader, ExtremePixelsScaleToZeroAndOne) {
    write_raw(path("ext.idx"), idx_file(0x802, {1, 2}, {0, 255}));
    Dataset d = read_rows(path("ext.idx"));
    EXPECT_EQ(d.values[0], 0.0f);
    EXPECT_EQ(d.values[1], 1.0f);
}

TEST_F(IdxReader, ReadsLabelsRawAndGzip) {
    Bytes labels = {7, 0, 9, 200, 3};  // > 9 is fine: labels are just bytes
    write_raw(path("lab.idx"), idx_file(0x801, {5}, labels));
    write_gz(path("lab.idx.gz"), idx_file(0x801, {5}, labels));
    EXPECT_EQ(read_idx_labels(path("lab.idx")), labels);
    EXPECT_EQ(read_idx_labels(path("lab.idx.gz")), labels);
}

TEST_F(IdxReader, ProbeReadsOnlyTheGzipHeader) {
    // Data cut short inside an intact gzip stream: the header alone looks fine.
    Bytes cut(good_.begin(), good_.end() - 7);
    write_gz(path("cut.gz"), cut);
    EXPECT_EQ(probe_source(path("cut.gz")).n_rows, 5u);
    expect_error([&] { read_rows(path("cut.gz"), {0, 1}); }, {path("cut.gz"), "truncated"});
}

// ================= IDX: bad files =================

TEST_F(IdxReader, RefusesMissingFileAndDirectory) {
    expect_error([&] { read_rows(path("nope.idx")); }, {path("nope.idx"), "no such file"});
    expect_error([&] { probe_source(path("nope.idx")); }, {path("nope.idx"), "no such file"});
    expect_error([&] { read_idx_labels(path("nope.idx")); }, {path("nope.idx"), "no such file"});
    expect_error([&] { read_rows(dir_.string()); }, {dir_.string(), "directory"});
}

TEST_F(IdxReader, RefusesWrongMagic) {
    write_raw(path("junk.idx"), idx_file(0x12345678, {5, 3, 4}, pixels(5, 12)));
    expect_error([&] { read_rows(path("junk.idx")); }, {path("junk.idx"), "magic", "0x12345678"});
    write_raw(path("lab.idx"), idx_file(0x801, {3}, {1, 2, 3}));
    expect_error([&] { read_rows(path("lab.idx")); }, {path("lab.idx"), "magic", "0x00000801"});
    expect_error([&] { read_idx_labels(path("img.idx")); }, {path("img.idx"), "magic", "0x00000803"});
    write_raw(path("rank4.idx"), idx_file(0x804, {1, 1, 1, 1}, {0}));
    expect_error([&] { read_rows(path("rank4.idx")); }, {path("rank4.idx"), "magic"});
}

TEST_F(IdxReader, RefusesHdf5FileAsIdxWithAHint) {
    std::vector<float> v(4, 0.5f);
    write_h5_floats(path("data.h5"), "/x", {2, 2}, v);
    expect_error([&] { read_rows(path("data.h5")); }, {path("data.h5"), "magic", "HDF5", ":/"});
}

TEST_F(IdxReader, RefusesUnsupportedElementType) {
    write_raw(path("float.idx"), idx_file(0x00000D03, {1, 1, 1}, {0, 0, 0, 0}));
    expect_error([&] { read_rows(path("float.idx")); }, {path("float.idx"), "unsupported", "float32"});
    write_raw(path("weird.idx"), idx_file(0x00000703, {1, 1, 1}, {0}));
    expect_error([&] { probe_source(path("weird.idx")); }, {path("weird.idx"), "unsupported"});
}

TEST_F(IdxReader, RefusesTruncatedRawFiles) {
    Bytes cut(good_.begin(), good_.end() - 5);
    write_raw(path("cut.idx"), cut);
    expect_error([&] { read_rows(path("cut.idx")); }, {path("cut.idx"), "truncated"});
    expect_error([&] { read_rows(path("cut.idx"), {0, 1}); }, {path("cut.idx"), "truncated"});
    expect_error([&] { probe_source(path("cut.idx")); }, {path("cut.idx"), "truncated"});
    write_raw(path("stub.idx"), {0, 0});
    expect_error([&] { read_rows(path("stub.idx")); }, {path("stub.idx"), "truncated"});
    write_raw(path("halfheader.idx"), Bytes(good_.begin(), good_.begin() + 10));
    expect_error([&] { read_rows(path("halfheader.idx")); }, {path("halfheader.idx"), "truncated"});
    write_raw(path("empty_file.idx"), {});
    expect_error([&] { read_rows(path("empty_file.idx")); }, {path("empty_file.idx"), "truncated"});
    Bytes labels = idx_file(0x801, {5}, {1, 2, 3});
    write_raw(path("lab_cut.idx"), labels);
    expect_error([&] { read_idx_labels(path("lab_cut.idx")); }, {path("lab_cut.idx"), "truncated"});
}

TEST_F(IdxReader, RefusesTruncatedGzipData) {
    Bytes cut(good_.begin(), good_.end() - 5);
    write_gz(path("cut.gz"), cut);
    expect_error([&] { read_rows(path("cut.gz")); }, {path("cut.gz"), "truncated"});
    expect_error([&] { read_rows(path("cut.gz"), {0, 1}); }, {path("cut.gz"), "truncated"});
    write_gz(path("lab_cut.gz"), idx_file(0x801, {5}, {1, 2, 3}));
    expect_error([&] { read_idx_labels(path("lab_cut.gz")); }, {path("lab_cut.gz"), "truncated"});
}

TEST_F(IdxReader, RefusesCutGzipStream) {
    // A large incompressible-ish file, so the compressed stream is long enough to cut.
    Bytes big = idx_file(0x803, {200, 28, 28}, pixels(200, 784));
    for (std::size_t i = 16; i < big.size(); ++i) big[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    write_gz(path("big.gz"), big);
    Bytes gz = read_all(path("big.gz"));
    write_raw(path("half.gz"), Bytes(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
    expect_error([&] { read_rows(path("half.gz"), {0, 1}); }, {path("half.gz"), "truncated"});
    write_raw(path("notrailer.gz"), Bytes(gz.begin(), gz.end() - 4));  // CRC/size trailer cut
    expect_error([&] { read_rows(path("notrailer.gz")); }, {path("notrailer.gz"), "truncated"});
}

TEST_F(IdxReader, RefusesCorruptGzipStream) {
    Bytes big = idx_file(0x803, {200, 28, 28}, pixels(200, 784));
    write_gz(path("big.gz"), big);
    Bytes gz = read_all(path("big.gz"));
    for (std::size_t i = gz.size() / 3; i < gz.size() / 3 + 64; ++i) gz[i] = 0xff;
    write_raw(path("corrupt.gz"), gz);
    expect_error([&] { read_rows(path("corrupt.gz")); }, {path("corrupt.gz"), "corrupt gzip"});
    // A gzip header followed by a deflate block of the reserved type 3.
    write_raw(path("badblock.gz"), {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0x07, 0, 0, 0, 0, 0, 0, 0, 0});
    expect_error([&] { read_rows(path("badblock.gz")); }, {path("badblock.gz"), "corrupt gzip"});
    write_raw(path("magic_only.gz"), {0x1f, 0x8b});
    expect_error([&] { read_rows(path("magic_only.gz")); }, {path("magic_only.gz"), "gzip"});
}

TEST_F(IdxReader, RefusesDimensionsThatDisagreeWithFileSize) {
    Bytes extra = good_;
    extra.push_back(42);
    write_raw(path("extra.idx"), extra);
    expect_error([&] { read_rows(path("extra.idx")); }, {path("extra.idx"), "disagree", "file size"});
    write_gz(path("extra.gz"), extra);
    expect_error([&] { read_rows(path("extra.gz"), {0, 2}); }, {path("extra.gz"), "disagree", "file size"});
    write_raw(path("lab_extra.idx"), idx_file(0x801, {2}, {1, 2, 3}));
    expect_error([&] { read_idx_labels(path("lab_extra.idx")); }, {path("lab_extra.idx"), "disagree"});
}

TEST_F(IdxReader, RefusesDimensionsThatOverflow) {
    write_raw(path("huge.idx"), idx_file(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {0}));
    expect_error([&] { probe_source(path("huge.idx")); }, {path("huge.idx"), "overflow"});
    write_gz(path("huge.gz"), idx_file(0x803, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {0}));
    expect_error([&] { read_rows(path("huge.gz")); }, {path("huge.gz"), "overflow"});
}

TEST_F(IdxReader, RefusesEmptyData) {
    write_raw(path("norows.idx"), idx_file(0x803, {0, 28, 28}, {}));
    expect_error([&] { read_rows(path("norows.idx")); }, {path("norows.idx"), "empty"});
    write_raw(path("nocols.idx"), idx_file(0x803, {5, 28, 0}, {}));
    expect_error([&] { probe_source(path("nocols.idx")); }, {path("nocols.idx"), "empty"});
    write_gz(path("nocols2d.gz"), idx_file(0x802, {5, 0}, {}));
    expect_error([&] { read_rows(path("nocols2d.gz")); }, {path("nocols2d.gz"), "empty"});
    write_raw(path("nolabels.idx"), idx_file(0x801, {0}, {}));
    expect_error([&] { read_idx_labels(path("nolabels.idx")); }, {path("nolabels.idx"), "empty"});
}

TEST_F(IdxReader, RefusesRowRangeBeyondTheData) {
    for (const std::string name : {"img.idx", "img_compressed.idx"}) {
        expect_error([&] { read_rows(path(name), {0, 6}); }, {path(name), "beyond"});
        expect_error([&] { read_rows(path(name), {6, SIZE_MAX}); }, {path(name), "beyond"});
        expect_error([&] { read_rows(path(name), {3, 2}); }, {path(name), "beyond"});
    }
}

TEST_F(IdxReader, LabelCountMismatchNamesBothFiles) {
    EXPECT_NO_THROW(check_labels_match("img.idx", 5, "lab.idx", 5));
    expect_error([] { check_labels_match("train-images.idx", 60000, "t10k-labels.idx", 10000); },
                 {"train-images.idx", "t10k-labels.idx", "60000", "10000", "match"});
}

// ================= HDF5 input =================

class Hdf5Input : public DataTmp {};

TEST_F(Hdf5Input, ReadsUint8ScaledWithSquareShape) {
    Bytes v = pixels(6, 16);
    write_h5(path("u8.h5"), "/g/sub/pixels", H5T_STD_U8LE, H5T_NATIVE_UINT8, {6, 16}, v.data());
    std::string spec = path("u8.h5") + ":/g/sub/pixels";
    Dataset d = read_rows(spec);
    EXPECT_EQ(d.source, spec);
    EXPECT_EQ(d.n_rows, 6u);
    EXPECT_EQ(d.n_cols, 16u);
    EXPECT_EQ(d.image_height, 4u);
    EXPECT_EQ(d.image_width, 4u);
    expect_pixels(d, 0);
    SourceInfo info = probe_source(spec);
    EXPECT_EQ(info.n_rows, 6u);
    EXPECT_EQ(info.n_cols, 16u);
}

// A 2-D dataset's image shape: its own attributes first (0 x 0: not images), none for
// rbm transform's features whatever their count, else a square count's guess.
TEST_F(Hdf5Input, ImageShapeFromAttributesFeaturesOrASquare) {
    Bytes v = pixels(3, 64);
    const auto tagged = [&](const std::string& name, std::initializer_list<std::pair<const char*, uint64_t>> attrs,
                            const char* kind = nullptr) {
        write_h5(path(name), "/x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {3, 64}, v.data());
        h5::Handle file(H5Fopen(path(name).c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
        h5::Handle dset(H5Dopen2(file.get(), "/x", H5P_DEFAULT));
        for (const auto& [attr, value] : attrs) h5::set_attr(dset.get(), attr, value);
        if (kind) h5::set_kind(file.get(), kind, 1);
        return path(name) + ":/x";
    };
    const auto shape = [](const std::string& spec) {
        const Dataset d = read_rows(spec);
        const SourceInfo info = probe_source(spec);
        EXPECT_EQ(info.image_height, d.image_height) << spec;
        EXPECT_EQ(info.image_width, d.image_width) << spec;
        return std::to_string(d.image_height) + "x" + std::to_string(d.image_width);
    };
    EXPECT_EQ(shape(tagged("plain.h5", {})), "8x8");
    EXPECT_EQ(shape(tagged("wide.h5", {{"image_height", 4}, {"image_width", 16}})), "4x16");
    EXPECT_EQ(shape(tagged("none.h5", {{"image_height", 0}, {"image_width", 0}})), "0x0");
    EXPECT_EQ(shape(tagged("features.h5", {}, "features")), "0x0");
    EXPECT_EQ(shape(tagged("tagged_features.h5", {{"image_height", 2}, {"image_width", 32}}, "features")), "2x32");
    const std::string half = tagged("half.h5", {{"image_height", 8}});
    expect_error([&] { probe_source(half); }, {path("half.h5"), "'image_height' but not 'image_width'"});
    const std::string wrong = tagged("wrong.h5", {{"image_height", 8}, {"image_width", 9}});
    expect_error([&] { read_rows(wrong); }, {path("wrong.h5"), "images of 8 x 9", "64 values"});
    const std::string zero_one = tagged("zero_one.h5", {{"image_height", 0}, {"image_width", 64}});
    expect_error([&] { read_rows(zero_one); }, {path("zero_one.h5"), "images of 0 x 64"});
}

TEST_F(Hdf5Input, ReadsFloat32AndFloat64AsTheyAre) {
    std::vector<float> f = {0.0f, 0.25f, 1.0f, 0.125f, 0.5f, 0.75f};
    write_h5_floats(path("f32.h5"), "/x", {2, 3}, f);
    Dataset d = read_rows(path("f32.h5") + ":/x");
    EXPECT_EQ(d.values, f);
    EXPECT_EQ(d.image_height, 0u);  // 3 columns: not a square
    std::vector<double> g = {0.1, 0.2, 0.3, 0.4};
    write_h5(path("f64.h5"), "/data/y", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, {4, 1}, g.data());
    Dataset e = read_rows(path("f64.h5") + ":/data/y");
    ASSERT_EQ(e.values.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(e.values[i], static_cast<float>(g[i]));
}

TEST_F(Hdf5Input, FlattensThreeDimensionalImages) {
    Bytes v = pixels(3, 10);
    write_h5(path("img3.h5"), "/images", H5T_STD_U8LE, H5T_NATIVE_UINT8, {3, 2, 5}, v.data());
    Dataset d = read_rows(path("img3.h5") + ":/images");
    EXPECT_EQ(d.n_cols, 10u);
    EXPECT_EQ(d.image_height, 2u);
    EXPECT_EQ(d.image_width, 5u);
    expect_pixels(d, 0);
}

TEST_F(Hdf5Input, ReadsOnlyTheRowRange) {
    Bytes v = pixels(8, 6);
    write_h5(path("rows.h5"), "/d", H5T_STD_U8LE, H5T_NATIVE_UINT8, {8, 6}, v.data(), true);
    Dataset d = read_rows(path("rows.h5") + ":/d", {2, 5});
    EXPECT_EQ(d.n_rows, 3u);
    EXPECT_EQ(d.first_row, 2u);
    expect_pixels(d, 2);
    Bytes w = pixels(4, 12);
    write_h5(path("rows3.h5"), "/d", H5T_STD_U8LE, H5T_NATIVE_UINT8, {4, 3, 4}, w.data());
    Dataset e = read_rows(path("rows3.h5") + ":/d", {1, SIZE_MAX});
    EXPECT_EQ(e.n_rows, 3u);
    expect_pixels(e, 1);
    EXPECT_EQ(read_rows(path("rows.h5") + ":/d", {8, 8}).n_rows, 0u);
}

TEST_F(Hdf5Input, SplitsTheSpecAtTheLastColonSlash) {
    fs::create_directories(dir_ / "odd:dir");
    std::vector<float> f = {0.5f, 0.5f};
    write_h5_floats(path("odd:dir/a:b.h5"), "/x", {1, 2}, f);
    EXPECT_EQ(read_rows(path("odd:dir/a:b.h5") + ":/x").n_cols, 2u);
}

TEST_F(Hdf5Input, RefusesMissingAndNonHdf5Files) {
    std::string missing = path("missing.h5") + ":/x";
    expect_error([&] { read_rows(missing); }, {path("missing.h5"), "no such file"});
    expect_error([&] { probe_source(missing); }, {path("missing.h5"), "no such file"});
    write_raw(path("text.h5"), {'h', 'e', 'l', 'l', 'o'});
    expect_error([&] { read_rows(path("text.h5") + ":/x"); }, {path("text.h5"), "not an HDF5 file"});
}

TEST_F(Hdf5Input, RefusesTruncatedHdf5File) {
    std::vector<float> f(4096, 0.5f);
    write_h5_floats(path("whole.h5"), "/x", {64, 64}, f);
    Bytes all = read_all(path("whole.h5"));
    write_raw(path("cut.h5"), Bytes(all.begin(), all.begin() + static_cast<long>(all.size() / 2)));
    expect_error([&] { read_rows(path("cut.h5") + ":/x"); }, {path("cut.h5")});
}

TEST_F(Hdf5Input, RefusesMissingDatasetAndGroups) {
    std::vector<float> f = {0.5f, 0.5f};
    write_h5_floats(path("f.h5"), "/grp/x", {1, 2}, f);
    std::string spec = path("f.h5") + ":/grp/y";
    expect_error([&] { read_rows(spec); }, {spec, "no such dataset", "/grp/y"});
    expect_error([&] { probe_source(path("f.h5") + ":/nogroup/x"); }, {path("f.h5"), "no such dataset"});
    expect_error([&] { read_rows(path("f.h5") + ":/grp"); }, {path("f.h5"), "not a dataset", "group"});
}

TEST_F(Hdf5Input, RefusesWrongRank) {
    std::vector<float> one = {0.5f, 0.5f, 0.5f};
    write_h5_floats(path("r1.h5"), "/x", {3}, one);
    expect_error([&] { read_rows(path("r1.h5") + ":/x"); }, {path("r1.h5"), "rank", "[3]"});
    std::vector<float> four(16, 0.5f);
    write_h5_floats(path("r4.h5"), "/x", {2, 2, 2, 2}, four);
    expect_error([&] { probe_source(path("r4.h5") + ":/x"); }, {path("r4.h5"), "rank"});
}

TEST_F(Hdf5Input, RefusesUnsupportedTypes) {
    std::vector<int64_t> i64 = {0, 1, 0, 1};
    write_h5(path("i64.h5"), "/x", H5T_STD_I64LE, H5T_NATIVE_INT64, {2, 2}, i64.data());
    expect_error([&] { read_rows(path("i64.h5") + ":/x"); },
                 {path("i64.h5"), "unsupported type", "64-bit signed integer", "refuses"});
    std::vector<int8_t> i8 = {0, 1, 0, 1};
    write_h5(path("i8.h5"), "/x", H5T_STD_I8LE, H5T_NATIVE_INT8, {2, 2}, i8.data());
    expect_error([&] { probe_source(path("i8.h5") + ":/x"); }, {path("i8.h5"), "8-bit signed integer"});
    hid_t str = H5Tcopy(H5T_C_S1);
    ASSERT_GE(str, 0);
    ASSERT_GE(H5Tset_size(str, 4), 0);
    const char text[] = "abcdefghijklmnop";
    write_h5(path("str.h5"), "/x", str, str, {2, 2}, text);
    ASSERT_GE(H5Tclose(str), 0);
    expect_error([&] { read_rows(path("str.h5") + ":/x"); }, {path("str.h5"), "unsupported type", "string"});
}

TEST_F(Hdf5Input, RefusesNaNAndInfNamingRowAndColumn) {
    std::vector<float> v(20, 0.5f);
    v[2 * 5 + 3] = std::nanf("");
    write_h5_floats(path("nan.h5"), "/x", {4, 5}, v);
    std::string spec = path("nan.h5") + ":/x";
    expect_error([&] { read_rows(spec); }, {spec, "NaN", "row 2", "column 3"});
    expect_error([&] { read_rows(spec, {1, 4}); }, {"row 2", "column 3"});  // global row
    EXPECT_NO_THROW(read_rows(spec, {0, 2}));  // only the rows read are checked
    v[2 * 5 + 3] = 0.5f;
    v[3 * 5 + 1] = -std::numeric_limits<float>::infinity();
    write_h5_floats(path("inf.h5"), "/x", {4, 5}, v);
    expect_error([&] { read_rows(path("inf.h5") + ":/x"); }, {path("inf.h5"), "Inf", "row 3", "column 1"});
}

TEST_F(Hdf5Input, RefusesValuesOutsideUnitRange) {
    std::vector<float> v(6, 0.5f);
    v[1 * 3 + 0] = 1.5f;
    write_h5_floats(path("big.h5"), "/x", {2, 3}, v);
    expect_error([&] { read_rows(path("big.h5") + ":/x"); },
                 {path("big.h5"), "1.5", "row 1", "column 0", "outside [0, 1]"});
    std::vector<double> w(6, 0.5);
    w[5] = -0.25;
    write_h5(path("neg.h5"), "/x", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {2, 3}, w.data());
    expect_error([&] { read_rows(path("neg.h5") + ":/x"); }, {"-0.25", "row 1", "column 2", "outside"});
}

TEST_F(Hdf5Input, RefusesEmptyDatasets) {
    write_h5(path("norows.h5"), "/x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {0, 784}, nullptr);
    expect_error([&] { read_rows(path("norows.h5") + ":/x"); }, {path("norows.h5"), "empty"});
    write_h5(path("nocols.h5"), "/x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {5, 0}, nullptr);
    expect_error([&] { probe_source(path("nocols.h5") + ":/x"); }, {path("nocols.h5"), "empty"});
}

TEST_F(Hdf5Input, RefusesShapesThatOverflow) {
    // Chunked storage allocates nothing, so a dataset this large can be declared.
    hsize_t huge = hsize_t{1} << 40;
    write_h5(path("huge.h5"), "/x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {huge, huge}, nullptr, true);
    expect_error([&] { probe_source(path("huge.h5") + ":/x"); }, {path("huge.h5"), "overflow"});
}

TEST_F(Hdf5Input, RefusesRowRangeBeyondTheData) {
    Bytes v = pixels(4, 4);
    write_h5(path("u8.h5"), "/x", H5T_STD_U8LE, H5T_NATIVE_UINT8, {4, 4}, v.data());
    std::string spec = path("u8.h5") + ":/x";
    expect_error([&] { read_rows(spec, {2, 5}); }, {spec, "beyond"});
    expect_error([&] { read_rows(spec, {5, SIZE_MAX}); }, {spec, "beyond"});
}

// ================= binarisation =================

namespace {

Dataset constant_data(std::size_t rows, std::size_t cols, float value, std::size_t first_row = 0) {
    Dataset d;
    d.n_rows = rows;
    d.n_cols = cols;
    d.first_row = first_row;
    d.values.assign(rows * cols, value);
    return d;
}

}  // namespace

TEST(DataBinarize, ThresholdIsExact) {
    Dataset d = constant_data(1, 6, 0.0f);
    d.values = {0.0f, 0.49f, 0.5f, 0.51f, 1.0f, 0.7f};
    EXPECT_FALSE(is_binary(d));
    binarize(d, {Binarization::threshold, 0.5f, 0});
    EXPECT_EQ(d.values, (std::vector<float>{0, 0, 1, 1, 1, 1}));
    EXPECT_TRUE(is_binary(d));
    Dataset e = constant_data(1, 3, 0.0f);
    e.values = {0.2f, 0.3f, 0.9f};
    binarize(e, {Binarization::threshold, 0.3f, 0});
    EXPECT_EQ(e.values, (std::vector<float>{0, 1, 1}));
}

TEST(DataBinarize, NoneLeavesValuesAlone) {
    Dataset d = constant_data(2, 3, 0.25f);
    binarize(d, {});
    EXPECT_EQ(d.values, std::vector<float>(6, 0.25f));
    EXPECT_FALSE(is_binary(d));
    EXPECT_TRUE(is_binary(constant_data(2, 2, 1.0f)));
}

TEST(DataBinarize, StochasticMatchesPhiloxPerRowAndColumn) {
    Dataset d = constant_data(7, 13, 0.5f, 100);
    for (std::size_t i = 0; i < d.values.size(); ++i) d.values[i] = static_cast<float>(i % 17) / 16.0f;
    Dataset orig = d;
    binarize(d, {Binarization::stochastic, 0.5f, 1234});
    Stream s = Stream::make(1234, 0, Purpose::binarize);
    for (std::size_t i = 0; i < d.n_rows; ++i)
        for (std::size_t c = 0; c < d.n_cols; ++c) {
            float u = uniform_at(s, 100 + i, 0, c);
            EXPECT_EQ(d.row(i)[c], orig.row(i)[c] > u ? 1.0f : 0.0f) << i << "," << c;
        }
    Dataset again = orig;
    binarize(again, {Binarization::stochastic, 0.5f, 1234});
    EXPECT_EQ(again.values, d.values);
    Dataset other_seed = orig;
    binarize(other_seed, {Binarization::stochastic, 0.5f, 1235});
    EXPECT_NE(other_seed.values, d.values);
}

TEST(DataBinarize, StochasticMeanIsThePixelValue) {
    for (float p : {0.0f, 0.1f, 0.3f, 0.75f, 1.0f}) {
        Dataset d = constant_data(200, 500, p);
        binarize(d, {Binarization::stochastic, 0.5f, 99});
        ASSERT_TRUE(is_binary(d));
        double sum = 0;
        for (float v : d.values) sum += v;
        EXPECT_NEAR(sum / static_cast<double>(d.values.size()), p, 0.006) << "p=" << p;  // ~4 sigma
    }
}

TEST(DataBinarize, DrawZeroIsTheStochasticBinarisationAndLaterDrawsDiffer) {
    Dataset gray = constant_data(9, 11, 0.5f, 40);
    for (std::size_t i = 0; i < gray.values.size(); ++i) gray.values[i] = static_cast<float>(i % 13) / 12.0f;
    Dataset once = gray;
    binarize(once, {Binarization::stochastic, 0.5f, 5});
    Dataset dynamic_once = gray;  // dynamic data outside training (validation, test): draw 0
    binarize(dynamic_once, {Binarization::dynamic, 0.5f, 5});
    EXPECT_EQ(dynamic_once.values, once.values);
    Dataset drawn;
    binarize_draw(gray, drawn, 5, 0);
    EXPECT_EQ(drawn.values, once.values);
    EXPECT_EQ(drawn.first_row, gray.first_row);
    binarize_draw(gray, drawn, 5, 3);
    EXPECT_NE(drawn.values, once.values);
    const Stream s = Stream::make(5, 0, Purpose::binarize);
    for (std::size_t i = 0; i < gray.n_rows; ++i)
        for (std::size_t c = 0; c < gray.n_cols; ++c)
            ASSERT_EQ(drawn.row(i)[c], gray.row(i)[c] > uniform_at(s, 40 + i, 3, c) ? 1.0f : 0.0f) << i << "," << c;
}

TEST(DataBinarize, DrawsAverageToThePixelValue) {
    Dataset gray = constant_data(1, 8, 0.0f);
    for (std::size_t c = 0; c < 8; ++c) gray.values[c] = static_cast<float>(c) / 7.0f;
    std::vector<double> sums(8, 0.0);
    Dataset drawn;
    const int draws = 4000;
    for (int e = 0; e < draws; ++e) {
        binarize_draw(gray, drawn, 0, static_cast<uint32_t>(e));
        for (std::size_t c = 0; c < 8; ++c) sums[c] += drawn.values[c];
    }
    for (std::size_t c = 0; c < 8; ++c) EXPECT_NEAR(sums[c] / draws, gray.values[c], 0.032) << c;  // ~4 sigma
}

class DataBinarizeFiles : public DataTmp {};

TEST_F(DataBinarizeFiles, StochasticDoesNotDependOnTheRowRange) {
    write_gz(path("img.gz"), idx_file(0x803, {40, 5, 6}, pixels(40, 30)));
    BinarizeSpec spec{Binarization::stochastic, 0.5f, 7};
    Dataset all = read_rows(path("img.gz"));
    binarize(all, spec);
    for (RowRange r : {RowRange{0, 10}, RowRange{13, 29}, RowRange{39, 40}}) {
        Dataset part = read_rows(path("img.gz"), r);
        binarize(part, spec);
        for (std::size_t i = 0; i < part.n_rows; ++i)
            for (std::size_t c = 0; c < part.n_cols; ++c)
                ASSERT_EQ(part.row(i)[c], all.row(r.begin + i)[c]) << r.begin << "+" << i << "," << c;
    }
}

// ================= the real data sets, when present =================

namespace {

void check_real(const std::string& images, const std::string& labels, std::size_t n) {
    SourceInfo info = probe_source(images);
    EXPECT_EQ(info.n_rows, n);
    EXPECT_EQ(info.n_cols, 784u);
    Dataset d = read_rows(images);
    EXPECT_EQ(d.n_rows, n);
    EXPECT_EQ(d.n_cols, 784u);
    EXPECT_EQ(d.image_height, 28u);
    EXPECT_EQ(d.image_width, 28u);
    float lo = 1, hi = 0;
    for (float v : d.values) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
    }
    EXPECT_GE(lo, 0.0f);
    EXPECT_LE(hi, 1.0f);
    EXPECT_EQ(hi, 1.0f);  // some pixel is 255 in every one of these sets
    std::vector<uint8_t> lab = read_idx_labels(labels);
    EXPECT_EQ(lab.size(), n);
    EXPECT_NO_THROW(check_labels_match(images, d.n_rows, labels, lab.size()));
    for (uint8_t l : lab) ASSERT_LE(l, 9);
}

}  // namespace

TEST(DataRealFiles, MnistAndFashionMnist) {
    // The source tree's data/ folder (CMake compiles this file by its absolute path).
    const fs::path data = fs::path(__FILE__).parent_path().parent_path().parent_path() / "data";
    const std::vector<std::pair<fs::path, std::string>> sets = {{data / "mnist", ""},
                                                                 {data / "fashion-mnist", ".gz"}};
    bool any = false;
    for (const auto& [dir, ext] : sets) {
        std::string train = (dir / ("train-images-idx3-ubyte" + ext)).string();
        if (!fs::exists(train)) continue;
        any = true;
        SCOPED_TRACE(dir.string());
        check_real(train, (dir / ("train-labels-idx1-ubyte" + ext)).string(), 60000);
        check_real((dir / ("t10k-images-idx3-ubyte" + ext)).string(),
                   (dir / ("t10k-labels-idx1-ubyte" + ext)).string(), 10000);
        Dataset slice = read_rows(train, {59990, 60000});
        EXPECT_EQ(slice.n_rows, 10u);
    }
    if (!any) GTEST_SKIP() << "MNIST / Fashion-MNIST not present under " << data;
}

// The training rows' fingerprint, kept in checkpoints: the same whichever shards it is
// summed over (a resume may change the rank count), and changed by any one value, by
// rows trading places, and by one row more or fewer.
TEST(RowsFingerprint, ShardFreeAndSensitive) {
    Dataset all;
    all.n_rows = 7;
    all.n_cols = 5;
    for (std::size_t e = 0; e < 35; ++e) all.values.push_back(float(e % 4) / 3.0f);
    const auto part = [&](std::size_t begin, std::size_t end) {
        Dataset d;
        d.n_rows = end - begin;
        d.n_cols = 5;
        d.values.assign(all.values.begin() + long(begin * 5), all.values.begin() + long(end * 5));
        return rows_fingerprint(d, begin);
    };
    const uint64_t whole = rows_fingerprint(all, 0);
    EXPECT_EQ(part(0, 3) + part(3, 7), whole);
    EXPECT_EQ(part(0, 1) + part(1, 2) + part(2, 5) + part(5, 7), whole);
    EXPECT_NE(part(0, 6), whole);
    Dataset changed = all;
    changed.values[17] = std::nextafter(changed.values[17], 2.0f);
    EXPECT_NE(rows_fingerprint(changed, 0), whole);
    Dataset swapped = all;
    std::swap_ranges(swapped.values.begin(), swapped.values.begin() + 5, swapped.values.begin() + 5);
    EXPECT_NE(rows_fingerprint(swapped, 0), whole);
}
