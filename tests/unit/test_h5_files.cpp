// rbm's HDF5 files are its contract with resumed runs and with h5py users, so these
// tests pin down round trips bit for bit and that every broken file is a clear error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "io/checkpoint.hpp"
#include "io/features_file.hpp"
#include "io/file_info.hpp"
#include "io/h5.hpp"
#include "io/metrics_file.hpp"
#include "io/samples_file.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using namespace rbm;
using rbm::test::error_of;

namespace {

// A fresh directory per test, so tests can run in parallel processes (ctest -j).
std::string fresh_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path dir = fs::path(RBM_TEST_TMP) / ("h5_files_" + std::to_string(::getpid())) /
                   (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

// Values that catch transposes, truncation to float and lost sign bits.
Checkpoint sample_checkpoint(std::size_t nv = 7, std::size_t nh = 5, std::size_t chains = 6) {
    Checkpoint c;
    c.params = ParamBuffer(RbmShape{nv, nh});
    c.velocity = ParamBuffer(RbmShape{nv, nh});
    for (std::size_t i = 0; i < c.params.values.size(); ++i) {
        c.params.values[i] = std::ldexp(static_cast<float>(i) * 0.731f - 3.3f, static_cast<int>(i % 9) - 4);
        c.velocity.values[i] = -1e-7f * static_cast<float>(i * i) + 1.0f / 3.0f;
    }
    c.params.values[0] = -0.0f;
    c.params.values[1] = std::numeric_limits<float>::denorm_min();
    c.visible_type = "bernoulli";
    c.hidden_type = "bernoulli";
    for (std::size_t i = 0; i < chains * nh; ++i) c.chains_hidden.push_back(static_cast<uint8_t>((i * 7) % 3 == 0));
    for (std::size_t i = 0; i < chains; ++i) c.chains_rank.push_back(static_cast<int32_t>(i % 3));
    c.step = 12345678901ULL;
    c.epoch = 17;
    c.steps_per_epoch = 833;
    c.step_in_epoch = 17;
    c.seed = 4000000000u;
    c.world_size = 3;
    c.train_rows = 59999;
    c.data_fingerprint = 0xfedcba9876543210ull;  // all 64 bits survive
    c.epoch_metric_sums = {-123.456789012345678, 1e-300, 0.1, 7.0};
    c.config_ini = "[model]\nn_hidden = 5\n\n[train]\nlearning_rate = 0.1  # ünïcode ok\n";
    return c;
}

// Rewrites one thing in a valid checkpoint to make it invalid in a specific way.
template <typename Edit>
std::string damaged_checkpoint(const std::string& dir, Edit edit) {
    std::string path = dir + "/bad.h5";
    write_checkpoint(path, sample_checkpoint());
    h5::Handle file = h5::open_file_write(path);
    edit(file.get());
    return path;
}

}  // namespace

TEST(H5Helpers, ChunkedDatasetRoundTripAndShapeErrors) {
    std::string dir = fresh_dir(), path = dir + "/big.h5";
    std::vector<float> big(300 * 100);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i) * 0.5f;
    std::vector<uint8_t> bytes(300 * 400);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i % 3 == 0);
    auto filters = [](hid_t f, const char* name) {
        h5::Handle d(H5Dopen2(f, name, H5P_DEFAULT));
        h5::Handle dcpl(H5Dget_create_plist(d));
        EXPECT_EQ(H5Pget_layout(dcpl), H5D_CHUNKED) << name;
        return H5Pget_nfilters(dcpl);
    };
    {
        h5::Handle f = h5::create_file(path);
        h5::write_floats(f, "big", big.data(), {300, 100});
        h5::write_bytes(f, "bytes", bytes.data(), {300, 400});
        EXPECT_EQ(filters(f, "big"), 1);    // floats: chunked and checksummed, not compressed
        EXPECT_EQ(filters(f, "bytes"), 3);  // > 64 KiB of integers: shuffle, deflate, fletcher32
    }
    EXPECT_LT(fs::file_size(path), big.size() * 4 + bytes.size() / 2);  // the bytes were deflated
    h5::Handle f = h5::open_file_read(path);
    EXPECT_EQ(h5::read_floats(f, "big", path, {300, 100}), big);
    EXPECT_EQ(h5::read_doubles(f, "big", path)[599], 299.5);
    std::string msg = error_of([&] { h5::read_floats(f, "big", path, {100, 300}); });
    EXPECT_THAT_STR(msg, "dataset '/big' has shape [300, 100], expected [100, 300]");
    EXPECT_THAT_STR(msg, path);
    EXPECT_ERROR_HAS(h5::read_floats(f, "nope", path), "has no dataset '/nope'");
    EXPECT_ERROR_HAS(h5::get_attr_int(f, "nope", path), "lacks the attribute 'nope'");
    EXPECT_FALSE(h5::exists(f, "a/b/c"));
}

TEST(H5Helpers, OpenErrorsSayWhy) {
    std::string dir = fresh_dir();
    EXPECT_ERROR_HAS(h5::open_file_read(dir + "/missing.h5"), "'" + dir + "/missing.h5' for reading: no such file");
    std::ofstream(dir + "/text.h5") << "hello, not hdf5\n";
    EXPECT_ERROR_HAS(h5::open_file_read(dir + "/text.h5"), "for reading: not an HDF5 file");
    EXPECT_ERROR_HAS(h5::create_file(dir + "/no/such/dir/x.h5"), "its directory does not exist");
}

TEST(Checkpoint, RoundTripIsBitForBit) {
    std::string dir = fresh_dir();
    Checkpoint c = sample_checkpoint();
    std::string path = checkpoint_path(dir, c.step);
    EXPECT_EQ(path, dir + "/checkpoints/step-12345678901.h5");
    write_checkpoint(path, c);
    Checkpoint r = read_checkpoint(path);
    ASSERT_EQ(r.params.shape, c.params.shape);
    ASSERT_EQ(r.velocity.shape, c.velocity.shape);
    EXPECT_EQ(0, std::memcmp(r.params.values.data(), c.params.values.data(), c.params.values.size() * 4));
    EXPECT_EQ(0, std::memcmp(r.velocity.values.data(), c.velocity.values.data(), c.velocity.values.size() * 4));
    EXPECT_TRUE(std::signbit(r.params.values[0]));
    EXPECT_EQ(r.visible_type, c.visible_type);
    EXPECT_EQ(r.hidden_type, c.hidden_type);
    EXPECT_EQ(r.chains_hidden, c.chains_hidden);
    EXPECT_EQ(r.chains_rank, c.chains_rank);
    EXPECT_EQ(r.step, c.step);
    EXPECT_EQ(r.epoch, c.epoch);
    EXPECT_EQ(r.steps_per_epoch, c.steps_per_epoch);
    EXPECT_EQ(r.step_in_epoch, c.step_in_epoch);
    EXPECT_EQ(r.seed, c.seed);
    EXPECT_EQ(r.world_size, c.world_size);
    EXPECT_EQ(r.train_rows, c.train_rows);
    EXPECT_EQ(r.data_fingerprint, c.data_fingerprint);
    EXPECT_EQ(0, std::memcmp(r.epoch_metric_sums.data(), c.epoch_metric_sums.data(), 4 * sizeof(double)));
    EXPECT_EQ(r.epoch_metric_sums.size(), c.epoch_metric_sums.size());
    EXPECT_EQ(r.config_ini, c.config_ini);
    EXPECT_EQ(r.n_chains_total(), 6u);
}

TEST(Checkpoint, LargeModelIsChunkedAndStillExact) {
    std::string dir = fresh_dir(), path = dir + "/big.h5";
    Checkpoint c = sample_checkpoint(784, 500, 20);
    write_checkpoint(path, c);
    Checkpoint r = read_checkpoint(path);
    EXPECT_EQ(0, std::memcmp(r.params.values.data(), c.params.values.data(), c.params.values.size() * 4));
    // Parameters and velocity as they are (floats are not compressed), little else.
    EXPECT_GT(fs::file_size(path), c.params.values.size() * 8);
    EXPECT_LT(fs::file_size(path), c.params.values.size() * 8 + 64 * 1024);
}

TEST(Checkpoint, AtomicWriteLeavesNoTmpAndReplaces) {
    std::string dir = fresh_dir();
    Checkpoint c = sample_checkpoint();
    std::string path = checkpoint_path(dir, 5);
    write_checkpoint(path, c);
    c.step = 6;
    write_checkpoint(path, c);  // overwrite in place
    EXPECT_EQ(read_checkpoint(path).step, 6u);
    for (const auto& e : fs::directory_iterator(dir + "/checkpoints"))
        EXPECT_NE(e.path().extension(), ".tmp") << e.path();
    // A failed write (inconsistent data) leaves neither the file nor a .tmp.
    c.chains_rank.pop_back();
    std::string bad = checkpoint_path(dir, 7);
    EXPECT_ERROR_HAS(write_checkpoint(bad, c), "chain ranks");
    EXPECT_FALSE(fs::exists(bad));
    EXPECT_FALSE(fs::exists(bad + ".tmp"));
}

TEST(Checkpoint, ErrorsNameTheFileAndTheProblem) {
    std::string dir = fresh_dir();
    std::string missing = dir + "/missing.h5";
    EXPECT_ERROR_HAS(read_checkpoint(missing), missing + "' for reading: no such file");

    std::string text = dir + "/text.h5";
    std::ofstream(text) << "[model]\nthis is an ini file\n";
    EXPECT_ERROR_HAS(read_checkpoint(text), text + "' for reading: not an HDF5 file");

    std::string metrics = dir + "/metrics.h5";
    MetricsFile(metrics).append(MetricsRow{});
    EXPECT_ERROR_HAS(read_checkpoint(metrics), metrics + "' is an rbm metrics file, not a checkpoint");

    std::string plain = dir + "/plain.h5";
    h5::create_file(plain);
    EXPECT_ERROR_HAS(read_checkpoint(plain), plain + "' is not an rbm checkpoint");

    std::string v2 = damaged_checkpoint(dir, [](hid_t f) { h5::set_attr(f, "format_version", int64_t{2}); });
    EXPECT_ERROR_HAS(read_checkpoint(v2), "written by format version 2, this rbm reads 1");

    std::string shape = damaged_checkpoint(dir, [](hid_t f) {
        h5::Handle model = h5::open_group(f, "model", "x");
        h5::set_attr(model, "n_hidden", uint64_t{4});
    });
    std::string msg = error_of([&] { read_checkpoint(shape); });
    EXPECT_THAT_STR(msg, "model/W has shape [7, 5], but the model's attributes say 7 x 4");
    EXPECT_THAT_STR(msg, shape);

    std::string ranks = damaged_checkpoint(dir, [](hid_t f) {
        H5Ldelete(f, "chains/rank", H5P_DEFAULT);
        int32_t r[4] = {0, 0, 1, 1};
        h5::Handle chains = h5::open_group(f, "chains", "x");
        h5::write_int32s(chains, "rank", r, {4});
    });
    EXPECT_ERROR_HAS(read_checkpoint(ranks), "chains/rank has 4 entries but chains/hidden has 6 rows");

    std::string world = damaged_checkpoint(dir, [](hid_t f) {
        h5::Handle state = h5::open_group(f, "state", "x");
        h5::set_attr(state, "world_size", uint64_t{2});
    });
    EXPECT_ERROR_HAS(read_checkpoint(world), "holds rank 2 but world_size is 2");

    std::string nogroup = damaged_checkpoint(dir, [](hid_t f) { H5Ldelete(f, "optimizer", H5P_DEFAULT); });
    EXPECT_ERROR_HAS(read_checkpoint(nogroup), nogroup + "' has no group 'optimizer'");
}

TEST(Checkpoint, TruncatedFileIsAClearError) {
    std::string dir = fresh_dir();
    std::string path = dir + "/trunc.h5";
    write_checkpoint(path, sample_checkpoint(784, 100, 10));
    auto size = fs::file_size(path);
    for (auto keep : {size / 2, size - 100, std::uintmax_t{4}}) {
        write_checkpoint(path, sample_checkpoint(784, 100, 10));
        ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(keep)), 0);
        std::string msg = error_of([&] { read_checkpoint(path); });
        EXPECT_THAT_STR(msg, path);
        EXPECT_TRUE(msg.find("truncated") != std::string::npos || msg.find("not an HDF5 file") != std::string::npos)
            << msg;
    }
}

// Overwrites `n` bytes at `offset` with a pattern no real checkpoint has there.
void garble(const std::string& path, std::uintmax_t offset, int n) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    for (int k = 0; k < n; ++k) f.put(static_cast<char>(0xA5 ^ k));
}

// Where the bytes of a dataset's first chunk lie in its file, halfway through them.
std::uintmax_t middle_of_first_chunk(const std::string& path, const char* dataset) {
    h5::Handle f = h5::open_file_read(path);
    h5::Handle d(H5Dopen2(f, dataset, H5P_DEFAULT));
    h5::Handle space(H5Dget_space(d));
    hsize_t offset[2] = {0, 0};
    unsigned filter_mask = 0;
    haddr_t address = 0;
    hsize_t size = 0;
    EXPECT_GE(H5Dget_chunk_info(d, space, 0, offset, &filter_mask, &address, &size), 0);
    EXPECT_GT(size, 128u);
    return std::uintmax_t(address + size / 2);
}

TEST(Checkpoint, GarbledFileIsAnErrorNotACrash) {
    std::string dir = fresh_dir(), path = dir + "/g.h5";
    Checkpoint c = sample_checkpoint(784, 100, 10);
    write_checkpoint(path, c);
    garble(path, middle_of_first_chunk(path, "model/W"), 64);  // W's checksummed data
    std::string msg = error_of([&] { read_checkpoint(path); });
    EXPECT_THAT_STR(msg, path);
    EXPECT_THAT_STR(msg, "damaged");

    // Anywhere in a small file: either a clear error or (rarely, in unused bytes) a clean read.
    write_checkpoint(path, sample_checkpoint());
    auto size = fs::file_size(path);
    std::string good = dir + "/good.h5";
    fs::copy_file(path, good);
    int errors = 0;
    for (std::uintmax_t off = 0; off < size; off += 61) {
        fs::copy_file(good, path, fs::copy_options::overwrite_existing);
        garble(path, off, 8);
        try {
            read_checkpoint(path);
        } catch (const Error& e) {
            ++errors;
            EXPECT_THAT_STR(std::string(e.what()), path);
        }
    }
    EXPECT_GT(errors, 20);  // much of a small file is unused space HDF5 reserved
}

TEST(Checkpoint, FindNewestAndPrune) {
    std::string dir = fresh_dir();
    EXPECT_FALSE(find_newest_checkpoint(dir).has_value());  // no checkpoints dir yet
    Checkpoint c = sample_checkpoint();
    for (uint64_t step : {100, 20, 3000, 5}) write_checkpoint(checkpoint_path(dir, step), c);
    // Decoys: an unfinished write of a later step and files that only look similar.
    std::ofstream(checkpoint_path(dir, 9999) + ".tmp") << "partial";
    std::ofstream(dir + "/checkpoints/step-99999.h5") << "short name";
    std::ofstream(dir + "/checkpoints/step-00000x9999.h5") << "not digits";
    std::ofstream(dir + "/checkpoints/notes.txt") << "x";
    EXPECT_EQ(find_newest_checkpoint(dir).value(), checkpoint_path(dir, 3000));

    prune_checkpoints(dir, 0);  // keeps all
    EXPECT_TRUE(fs::exists(checkpoint_path(dir, 5)));
    prune_checkpoints(dir, 2);
    EXPECT_FALSE(fs::exists(checkpoint_path(dir, 5)));
    EXPECT_FALSE(fs::exists(checkpoint_path(dir, 20)));
    EXPECT_TRUE(fs::exists(checkpoint_path(dir, 100)));
    EXPECT_TRUE(fs::exists(checkpoint_path(dir, 3000)));
    EXPECT_TRUE(fs::exists(dir + "/checkpoints/notes.txt"));
    EXPECT_TRUE(fs::exists(checkpoint_path(dir, 9999) + ".tmp"));
    prune_checkpoints(dir, 1);  // the newest alone
    EXPECT_FALSE(fs::exists(checkpoint_path(dir, 100)));
    EXPECT_TRUE(fs::exists(checkpoint_path(dir, 3000)));
}

// Centering offsets are means of 0/1 units: a checkpoint holding another value is damaged,
// and says so by its name whoever reads it (rbm info, a resume).
TEST(Checkpoint, RefusesCenteringOffsetsOutsideTheUnitInterval) {
    const std::string dir = fresh_dir();
    for (float bad : {1.5f, -0.5f}) {
        Checkpoint c = sample_checkpoint();
        c.visible_offset.assign(c.params.shape.n_visible, 0.5f);
        c.hidden_offset.assign(c.params.shape.n_hidden, 0.5f);
        c.visible_offset[1] = bad;
        const std::string path = dir + "/offset.h5";
        write_checkpoint(path, c);
        EXPECT_ERROR_HAS(read_checkpoint(path), path + "': centering offset " + (bad > 1 ? "1.5" : "-0.5") + " is outside [0, 1]");
    }
}

// The training data's image shape travels with the model (rbm sample from noise draws
// it); 0 x 0 says "not images"; a checkpoint written before rbm kept it reads as not
// stored; a shape that is not the model's visible count is refused.
TEST(Checkpoint, ImageShapeRoundTripsAndOlderCheckpointsLackIt) {
    const std::string dir = fresh_dir(), path = dir + "/images.h5";
    Checkpoint c = sample_checkpoint(12, 5);
    c.image_height = 3;
    c.image_width = 4;
    write_checkpoint(path, c);
    Checkpoint back = read_checkpoint(path);
    EXPECT_TRUE(back.image_shape_stored);
    EXPECT_EQ(back.image_height, 3u);
    EXPECT_EQ(back.image_width, 4u);
    c.image_height = c.image_width = 0;
    write_checkpoint(path, c);
    back = read_checkpoint(path);
    EXPECT_TRUE(back.image_shape_stored);
    EXPECT_EQ(back.image_height, 0u);
    const auto without = damaged_checkpoint(dir, [](hid_t f) {
        h5::Handle model(H5Gopen2(f, "model", H5P_DEFAULT));
        ASSERT_GE(H5Adelete(model.get(), "image_height"), 0);
        ASSERT_GE(H5Adelete(model.get(), "image_width"), 0);
    });
    EXPECT_FALSE(read_checkpoint(without).image_shape_stored);
    const auto wrong = damaged_checkpoint(dir, [](hid_t f) {
        h5::Handle model(H5Gopen2(f, "model", H5P_DEFAULT));
        h5::set_attr(model.get(), "image_height", uint64_t(2));
        h5::set_attr(model.get(), "image_width", uint64_t(2));
    });
    EXPECT_ERROR_HAS(read_checkpoint(wrong), wrong + "': model attributes say images of 2 x 2, but the model has 7 visible units");
}

// Gathered rank by rank ([rank][level][rows]), stored level by level ([level][rank][rows]),
// so each level reads like /chains/hidden and a resume slices every level alike.
TEST(Checkpoint, TemperedChainsAreStoredLevelByLevel) {
    // 2 ranks x 3 levels, blocks of 2 bytes: the byte says rank r, level m, row k as 100 r + 10 m + k.
    std::vector<uint8_t> gathered;
    for (uint8_t r = 0; r < 2; ++r)
        for (uint8_t m = 0; m < 3; ++m)
            for (uint8_t k = 0; k < 2; ++k) gathered.push_back(uint8_t(100 * r + 10 * m + k));
    const std::vector<uint8_t> want = {0, 1, 100, 101, 10, 11, 110, 111, 20, 21, 120, 121};
    EXPECT_EQ(tempered_chains_by_level(gathered, 3, 2), want);
    EXPECT_EQ(tempered_chains_by_level(gathered, 1, 1), gathered) << "one rank, one level: as gathered";
    EXPECT_ERROR_HAS(tempered_chains_by_level(std::vector<uint8_t>(7), 3, 2), "7 bytes of tempered chains are not 2 ranks x 3 levels");
}

TEST(Checkpoint, TemperedChainsRoundTripAndBadLaddersAreRefused) {
    const std::string dir = fresh_dir(), path = dir + "/pt.h5";
    auto tempered = [] {
        Checkpoint c = sample_checkpoint();
        c.tempered_betas = {0.75f, 0.5f};
        for (std::size_t i = 0; i < 2 * c.chains_hidden.size(); ++i)
            c.tempered_hidden.push_back(static_cast<uint8_t>((i * 5) % 7 < 3));
        return c;
    };
    const Checkpoint c = tempered();
    write_checkpoint(path, c);
    const Checkpoint r = read_checkpoint(path);
    EXPECT_EQ(r.tempered_betas, c.tempered_betas);
    EXPECT_EQ(r.tempered_hidden, c.tempered_hidden);
    write_checkpoint(dir + "/plain.h5", sample_checkpoint());
    EXPECT_TRUE(read_checkpoint(dir + "/plain.h5").tempered_hidden.empty());
    for (std::vector<float> bad : {std::vector<float>{0.5f, 0.75f}, {1.0f, 0.5f}, {0.5f, -0.25f}, {0.5f, 0.5f}}) {
        Checkpoint b = tempered();
        b.tempered_betas = bad;
        write_checkpoint(path, b);
        EXPECT_ERROR_HAS(read_checkpoint(path), "inverse temperatures must fall from below 1 to no less than 0");
    }
    Checkpoint b = tempered();
    b.tempered_hidden[3] = 2;
    write_checkpoint(path, b);
    EXPECT_ERROR_HAS(read_checkpoint(path), path + "': chains/tempered_hidden holds 2 at element 3");
    b = tempered();
    b.tempered_hidden.resize(b.chains_hidden.size());  // one level's rows for two levels
    EXPECT_ERROR_HAS(write_checkpoint(path, b), "2 tempered levels but");
    const std::string cut = damaged_checkpoint(dir, [](hid_t file) {
        h5::Handle chains = h5::open_group(file, "chains", "test");
        h5::write_floats(chains, "tempered_betas", std::vector<float>{0.5f}.data(), {1});
    });
    EXPECT_ERROR_HAS(read_checkpoint(cut), "': chains/tempered_betas without chains/tempered_hidden");
    // c written to `name` without its /chains/tempered_betas, then given `betas` there (if any).
    auto with_betas = [&](const std::string& name, const std::vector<float>& betas) {
        const std::string edited = dir + "/" + name;
        write_checkpoint(edited, c);
        h5::Handle file = h5::open_file_write(edited);
        h5::Handle chains = h5::open_group(file.get(), "chains", "test");
        H5Ldelete(chains.get(), "tempered_betas", H5P_DEFAULT);
        if (!betas.empty()) h5::write_floats(chains.get(), "tempered_betas", betas.data(), {betas.size()});
        return edited;
    };
    EXPECT_ERROR_HAS(read_checkpoint(with_betas("no_betas.h5", {})),
                     "': chains/tempered_hidden without chains/tempered_betas");
    EXPECT_ERROR_HAS(read_checkpoint(with_betas("shape.h5", {0.5f})),
                     "chains/tempered_hidden is [2, 6, 5] and chains/tempered_betas [1]");
}

TEST(Checkpoint, SwapTalliesRoundTripAndImpossibleCountsAreRefused) {
    const std::string dir = fresh_dir(), path = dir + "/swaps.h5";
    auto tallied = [] {
        Checkpoint c = sample_checkpoint();
        c.tempered_betas = {0.75f, 0.5f};
        c.tempered_hidden.assign(2 * c.chains_hidden.size(), 1);
        // [epoch, row][proposed, accepted][pair]
        c.tempered_swaps = {40, 36, 31, 7, 12, 12, 4, 2};
        return c;
    };
    write_checkpoint(path, tallied());
    EXPECT_EQ(read_checkpoint(path).tempered_swaps, tallied().tempered_swaps);
    Checkpoint untallied = tallied();
    untallied.tempered_swaps.clear();
    write_checkpoint(path, untallied);
    EXPECT_TRUE(read_checkpoint(path).tempered_swaps.empty()) << "checkpoints from before the tallies read as none";
    Checkpoint b = tallied();
    b.tempered_swaps[3] = 37;  // epoch, accepted, pair 1: more than pair 1's 36 proposed
    write_checkpoint(path, b);
    EXPECT_ERROR_HAS(read_checkpoint(path), path + "': chains/tempered_swaps[0, :, 1] counts 37 swaps accepted of 36 proposed");
    b = tallied();
    b.tempered_swaps[6] = -1;  // row, accepted, pair 0
    write_checkpoint(path, b);
    EXPECT_ERROR_HAS(read_checkpoint(path), "chains/tempered_swaps[1, :, 0] counts -1 swaps accepted of 12 proposed");
    b = tallied();
    b.tempered_swaps.resize(6);
    EXPECT_ERROR_HAS(write_checkpoint(path, b), "6 swap tallies for 2 tempered levels");
    const std::string reshaped = damaged_checkpoint(dir, [](hid_t file) {
        h5::Handle chains = h5::open_group(file, "chains", "test");
        h5::write_floats(chains, "tempered_betas", std::vector<float>{0.5f}.data(), {1});
        h5::write_bytes(chains, "tempered_hidden", std::vector<uint8_t>(30, 0).data(), {1, 6, 5});
        h5::write_int64s(chains, "tempered_swaps", std::vector<int64_t>(8, 0).data(), {2, 2, 2});
    });
    EXPECT_ERROR_HAS(read_checkpoint(reshaped), "chains/tempered_swaps is [2, 2, 2]; it must be [2, 2, 1]");
}

namespace {
MetricsRow metrics_row(uint64_t step) {
    MetricsRow r;
    r.step = step;
    r.epoch = step / 10.0;
    r.pseudo_likelihood = -100.0 + step;
    r.reconstruction_xent = 70.5 - step * 0.25;
    r.free_energy_train = -50.0 - step;
    r.free_energy_valid = step == 30 ? std::nan("") : -49.0 - step;
    r.free_energy_gap = 1.0;
    r.learning_rate = 0.1;
    r.examples_per_s = 12345.6 + step;
    r.wall_s = step * 1.5;
    return r;
}
}  // namespace

TEST(MetricsFile, AppendReopenAndDropAfterCheckpoint) {
    std::string dir = fresh_dir(), path = dir + "/metrics.h5";
    {
        MetricsFile m(path);
        for (uint64_t s : {10, 20, 30}) m.append(metrics_row(s));
        EXPECT_EQ(m.rows(), 3u);
        // Flushed per row: readable while still open for writing.
        EXPECT_EQ(read_metrics(path).size(), 3u);
    }
    {
        MetricsFile m(path);  // reopen appends
        EXPECT_EQ(m.rows(), 3u);
        m.append(metrics_row(40));
        m.append(metrics_row(50));
    }
    auto rows = read_metrics(path);
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[4].step, 50u);
    EXPECT_EQ(rows[1].examples_per_s, metrics_row(20).examples_per_s);
    EXPECT_EQ(rows[3].wall_s, 60.0);
    EXPECT_TRUE(std::isnan(rows[2].free_energy_valid));
    {
        MetricsFile m(path, 30);  // resumed from the step-30 checkpoint
        EXPECT_EQ(m.rows(), 3u);
        m.append(metrics_row(40));
    }
    rows = read_metrics(path);
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(rows[2].step, 30u);
    EXPECT_EQ(rows[3].step, 40u);
    EXPECT_EQ(MetricsFile(path, 0).rows(), 0u);
    EXPECT_TRUE(read_metrics(path).empty());
}

// The columns added later (parallel tempering's, the rank count) round-trip; a file
// written before they existed (the same table without them) is read with NaN there, and
// a resumed run's reopened file gains them.
// Each process that writes rows is numbered: 1 for the run's first, one more than the kept
// rows' last for a resume, so rows dropped with a resume do not count.
TEST(MetricsFile, ProcessNumbersCountTheResumesWhoseRowsAreKept) {
    const std::string path = fresh_dir() + "/metrics.h5";
    const auto stamped = [](MetricsFile& m, uint64_t step) {
        MetricsRow r = metrics_row(step);
        r.process = m.process();
        m.append(r);
    };
    {
        MetricsFile m(path, std::nullopt);
        EXPECT_EQ(m.process(), 1.0);
        stamped(m, 10);
        stamped(m, 20);
    }
    {
        MetricsFile m(path, 20);
        EXPECT_EQ(m.process(), 2.0);
        stamped(m, 30);
    }
    {
        MetricsFile m(path, 20);  // the step-30 row is dropped with its process
        EXPECT_EQ(m.process(), 2.0);
        stamped(m, 30);
        stamped(m, 40);
    }
    std::vector<double> processes;
    for (const MetricsRow& r : read_metrics(path)) processes.push_back(r.process);
    EXPECT_EQ(processes, (std::vector<double>{1, 1, 2, 2}));
    EXPECT_EQ(MetricsFile(path, 40).process(), 3.0);
    EXPECT_EQ(MetricsFile(path, std::nullopt).process(), 1.0);  // a fresh run drops every row
}

TEST(MetricsFile, SwapColumnAndFilesWithoutIt) {
    const std::string dir = fresh_dir(), path = dir + "/metrics.h5", old = dir + "/old.h5";
    {
        MetricsFile m(path);
        MetricsRow r = metrics_row(10);
        r.swap_acceptance_min = 0.125;
        r.ranks = 4;
        m.append(r);
        m.append(metrics_row(20));
    }
    std::vector<MetricsRow> rows = read_metrics(path);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].swap_acceptance_min, 0.125);
    EXPECT_EQ(rows[0].ranks, 4.0);
    EXPECT_TRUE(std::isnan(rows[1].swap_acceptance_min));
    {  // the table as rbm wrote it before the column: step and nine doubles, packed
        const char* names[] = {"epoch", "pseudo_likelihood", "reconstruction_xent", "free_energy_train",
                               "free_energy_valid", "free_energy_gap", "learning_rate", "examples_per_s", "wall_s"};
        h5::Handle file = h5::create_file(old);
        h5::set_kind(file.get(), "metrics", 1);
        h5::Handle type(H5Tcreate(H5T_COMPOUND, 80));
        H5Tinsert(type.get(), "step", 0, H5T_STD_U64LE);
        for (std::size_t i = 0; i < 9; ++i) H5Tinsert(type.get(), names[i], 8 * (i + 1), H5T_IEEE_F64LE);
        std::vector<unsigned char> row(80, 0);
        const uint64_t step = 7;
        const double epoch = 0.5;
        std::memcpy(row.data(), &step, 8);
        std::memcpy(row.data() + 8, &epoch, 8);
        hsize_t one = 1;
        h5::Handle space(H5Screate_simple(1, &one, nullptr));
        h5::Handle dset(H5Dcreate2(file.get(), "metrics", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        ASSERT_GE(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, row.data()), 0);
    }
    rows = read_metrics(old);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].step, 7u);
    EXPECT_EQ(rows[0].epoch, 0.5);
    EXPECT_TRUE(std::isnan(rows[0].swap_acceptance_min));
    EXPECT_TRUE(std::isnan(rows[0].ranks));
    {
        MetricsFile m(old, 7);  // a resumed run keeps the old row and appends with the column
        EXPECT_EQ(m.process(), 2.0);  // the old rows were one process
        MetricsRow r = metrics_row(8);
        r.swap_acceptance_min = 0.5;
        r.ranks = 2;
        m.append(r);
    }
    rows = read_metrics(old);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_TRUE(std::isnan(rows[0].swap_acceptance_min));
    EXPECT_TRUE(std::isnan(rows[0].ranks));
    EXPECT_EQ(rows[1].swap_acceptance_min, 0.5);
    EXPECT_EQ(rows[1].ranks, 2.0);
}

TEST(MetricsFile, RefusesFilesThatAreNotMetrics) {
    std::string dir = fresh_dir();
    std::string ckpt = dir + "/c.h5";
    write_checkpoint(ckpt, sample_checkpoint());
    EXPECT_ERROR_HAS(MetricsFile m(ckpt), ckpt + "' is an rbm checkpoint file, not a metrics file");
    EXPECT_ERROR_HAS(read_metrics(ckpt), "not a metrics file");
    std::string text = dir + "/t.h5";
    std::ofstream(text) << "step,pl\n1,2\n";
    EXPECT_ERROR_HAS(MetricsFile m(text), text + "' for writing: not an HDF5 file");
    std::string plain = dir + "/plain.h5";
    h5::create_file(plain);
    EXPECT_ERROR_HAS(MetricsFile m(plain), plain + "' is not an rbm metrics file");
    EXPECT_ERROR_HAS(MetricsFile m(dir + "/nodir/m.h5"), "its directory does not exist");
}

TEST(SamplesFile, RoundTrip) {
    std::string dir = fresh_dir(), path = dir + "/samples.h5";
    SampleSet s;
    s.n_samples = 3;
    s.n_chains = 4;
    s.n_visible = 6;
    s.image_height = 2;
    s.image_width = 3;
    for (std::size_t i = 0; i < 72; ++i) {
        s.mean_field.push_back(static_cast<float>(i) / 71.0f);
        s.binary.push_back(static_cast<uint8_t>(i % 5 == 0));
    }
    s.start_index = {17, -1, 123456789012LL, 0};
    s.text_attrs = {{"source_checkpoint", "runs/a/checkpoints/step-0000000100.h5"}, {"start", "data"}};
    s.number_attrs = {{"steps_between", 1000}, {"seed", 42}, {"temperature", 0.5}};
    write_samples(path, s);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    SampleSet r = read_samples(path);
    EXPECT_EQ(r.n_samples, 3u);
    EXPECT_EQ(r.n_chains, 4u);
    EXPECT_EQ(r.n_visible, 6u);
    EXPECT_EQ(r.image_height, 2u);
    EXPECT_EQ(r.image_width, 3u);
    EXPECT_EQ(r.mean_field, s.mean_field);
    EXPECT_EQ(r.binary, s.binary);
    EXPECT_EQ(r.start_index, s.start_index);
    EXPECT_EQ(r.text_attrs, s.text_attrs);
    EXPECT_EQ(r.number_attrs, s.number_attrs);

    s.start_index.pop_back();
    EXPECT_ERROR_HAS(write_samples(dir + "/bad.h5", s), "3 start indices for 4 chains");
    EXPECT_FALSE(fs::exists(dir + "/bad.h5.tmp"));
    EXPECT_ERROR_HAS(read_samples(dir + "/missing.h5"), "no such file");
}

TEST(FeaturesFile, RoundTripAndWhatItMayReplace) {
    std::string dir = fresh_dir(), path = dir + "/features.h5";
    FeatureSet s;
    s.n_examples = 5;
    s.n_hidden = 3;
    for (std::size_t i = 0; i < 15; ++i) s.features.push_back(float(i) / 14.0f);
    s.labels = {7, 2, 1, 0, 4};
    s.attrs.text = {{"checkpoint", "runs/a/checkpoints/step-0000000100.h5"}, {"binarize", "none"}};
    s.attrs.number = {{"checkpoint_step", 100}};
    check_features_destination(path);  // nothing there yet
    write_features(path, s);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
    const FeatureSet r = read_features(path);
    EXPECT_EQ(r.n_examples, 5u);
    EXPECT_EQ(r.n_hidden, 3u);
    EXPECT_EQ(r.features, s.features);
    EXPECT_EQ(r.labels, s.labels);
    EXPECT_EQ(r.attrs.text, s.attrs.text);
    EXPECT_EQ(r.attrs.number, s.attrs.number);
    check_features_destination(path);  // an older features file may be replaced

    std::ostringstream out;
    describe_file(path, out);
    for (const char* fact : {"rbm features", "features: [5, 3] float32", "labels: [5] uint8, 5 distinct", "checkpoint_step: 100"})
        EXPECT_THAT_STR(out.str(), fact);

    const std::string ckpt = dir + "/c.h5", samples = dir + "/s.h5";
    write_checkpoint(ckpt, sample_checkpoint());
    EXPECT_ERROR_HAS(check_features_destination(ckpt), ckpt + "' exists and is an rbm checkpoint file; rbm transform replaces only a features file");
    EXPECT_ERROR_HAS(read_features(ckpt), "is an rbm checkpoint file, not a features file");
    const std::string cut = dir + "/cut.h5";  // an HDF5 signature, then nothing a reader can use
    fs::copy_file(path, cut);
    fs::resize_file(cut, 1000);
    EXPECT_ERROR_HAS(check_features_destination(cut), cut + "' exists and is a damaged HDF5 file; rbm transform");
    EXPECT_ERROR_HAS(check_features_destination(dir + "/none/f.h5"), "--out " + dir + "/none/f.h5: its directory '" + dir + "/none' does not exist");
    s.labels.pop_back();
    EXPECT_ERROR_HAS(write_features(dir + "/bad.h5", s), "4 labels for 5 examples");
    s.labels.clear();
    s.attrs.text["format_version"] = "2";
    EXPECT_ERROR_HAS(write_features(dir + "/bad.h5", s), "attribute name 'format_version' is reserved");
    EXPECT_FALSE(fs::exists(dir + "/bad.h5"));
    EXPECT_FALSE(fs::exists(dir + "/bad.h5.tmp"));
}

TEST(FileInfo, DescribesEachKind) {
    std::string dir = fresh_dir();
    std::string ckpt = dir + "/c.h5", metrics = dir + "/m.h5", samples = dir + "/s.h5";
    Checkpoint c = sample_checkpoint();
    write_checkpoint(ckpt, c);
    std::ostringstream out;
    describe_file(ckpt, out);
    std::string text = out.str();
    for (const char* fact : {"checkpoint", "7 visible", "5 hidden", "step: 12345678901", "epoch: 17",
                             "seed: 4000000000", "world size: 3", "persistent chains: 6", "learning_rate = 0.1",
                             "W ", "min", "max", "mean"})
        EXPECT_THAT_STR(text, fact);

    {
        MetricsFile m(metrics);
        m.append(metrics_row(10));
        m.append(metrics_row(20));
    }
    out.str("");
    describe_file(metrics, out);
    text = out.str();
    for (const char* fact : {"metrics", "rows: 2", "step 20", "pseudo_likelihood -80"}) EXPECT_THAT_STR(text, fact);

    SampleSet s;
    s.n_samples = 2;
    s.n_chains = 3;
    s.n_visible = 4;
    s.mean_field.assign(24, 0.25f);
    s.text_attrs["start"] = "noise";
    write_samples(samples, s);
    out.str("");
    describe_file(samples, out);
    text = out.str();
    for (const char* fact : {"samples", "[2, 3, 4]", "start: noise"}) EXPECT_THAT_STR(text, fact);

    std::string plain = dir + "/plain.h5";
    h5::create_file(plain);
    EXPECT_ERROR_HAS(describe_file(plain, out), plain + "' is not an rbm file");
    std::string txt = dir + "/x.txt";
    std::ofstream(txt) << "x";
    EXPECT_ERROR_HAS(describe_file(txt, out), txt + "' for reading: not an HDF5 file");
}
