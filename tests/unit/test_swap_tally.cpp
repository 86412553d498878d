// Parallel tempering's swap tallies: the metrics row's and the epoch's windows move apart
// (a row resets only its own), and a checkpoint's copy restores both exactly.
#include <gtest/gtest.h>

#include <cmath>

#include "test_support.hpp"
#include "train/swap_tally.hpp"

using namespace rbm;

TEST(SwapTally, RowsAndEpochsCountTheirOwnSwaps) {
    SwapTally tally(2);
    tally.add({10, 4, 5, 1});  // pair 0: 5 of 10, pair 1: 1 of 4
    EXPECT_DOUBLE_EQ(tally.take_row_lowest(), 0.25);
    tally.add({0, 6, 0, 6});  // a step of the other parity: pair 1 only
    EXPECT_DOUBLE_EQ(tally.take_row_lowest(), 1.0) << "pair 0 proposed nothing in this row: it does not count";
    EXPECT_TRUE(std::isnan(tally.take_row_lowest())) << "nothing proposed since the last row";
    const std::vector<double> epoch = tally.take_epoch_rates();
    ASSERT_EQ(epoch.size(), 2u);
    EXPECT_DOUBLE_EQ(epoch[0], 0.5);
    EXPECT_DOUBLE_EQ(epoch[1], 0.7);  // 7 of 10 over both rows
    const std::vector<double> next = tally.take_epoch_rates();
    EXPECT_TRUE(std::isnan(next[0]) && std::isnan(next[1])) << "an epoch starts its count at 0";
    EXPECT_ERROR_HAS(tally.add({1, 1}), "swap counts for 1 pairs, expected 2");
}

TEST(SwapTally, ACheckpointsCopyRestoresBothWindows) {
    SwapTally tally(2);
    tally.add({10, 4, 5, 1});
    tally.take_row_lowest();
    tally.add({2, 8, 2, 3});
    const std::vector<int64_t> stored = tally.stored();
    // [epoch, row][proposed, accepted][pair]
    EXPECT_EQ(stored, (std::vector<int64_t>{12, 12, 7, 4, 2, 8, 2, 3}));
    SwapTally resumed(2);
    resumed.restore(stored);
    EXPECT_EQ(resumed.stored(), stored);
    EXPECT_DOUBLE_EQ(resumed.take_row_lowest(), tally.take_row_lowest());
    EXPECT_EQ(resumed.take_epoch_rates(), tally.take_epoch_rates());
    SwapTally old(2);
    old.restore({});  // a checkpoint from before the tallies were kept
    EXPECT_EQ(old.stored(), std::vector<int64_t>(8, 0));
    EXPECT_ERROR_HAS(old.restore({1, 2, 3, 4}), "4 stored swap tallies for 2 pairs");
}
