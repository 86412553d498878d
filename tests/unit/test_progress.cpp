// The progress line a batch log shows: epoch, step and total as the metrics count them,
// also after a resume on another number of ranks changed an epoch's length.
#include <gtest/gtest.h>

#include <sstream>

#include "train/progress.hpp"

namespace rbm {
namespace {

std::string second_line(uint64_t step, uint64_t position, uint64_t total_positions, uint64_t steps_per_epoch) {
    std::ostringstream out;
    Progress progress(out, false, 1e-9, total_positions, steps_per_epoch, 20);
    progress.tick(step - 1, position - 1);  // the first tick only starts the clock
    progress.tick(step, position);
    return out.str();
}

TEST(Progress, CountsStepsOfTheRun) {
    const std::string line = second_line(150, 150, 300, 100);
    EXPECT_NE(line.find("epoch 2/3  step 150/300"), std::string::npos) << line;
}

// A run of 2 ranks stopped at step 400 (4 of 6 epochs of 100 steps) resumed on 4 ranks,
// where an epoch is 50 steps: 2 epochs (100 steps) remain, so it ends at step 500, and
// the line must agree with the metrics' step, not count the old steps at the new length.
TEST(Progress, AfterAResumeOnMoreRanksCountsTheStepsTaken) {
    const std::string line = second_line(/*step*/ 410, /*position*/ 210, /*total*/ 300, 50);
    EXPECT_NE(line.find("epoch 5/6  step 410/500"), std::string::npos) << line;
}

TEST(Progress, NeverShowsAnEpochPastTheLast) {
    const std::string line = second_line(300, 300, 300, 100);
    EXPECT_NE(line.find("epoch 3/3  step 300/300"), std::string::npos) << line;
}

}  // namespace
}  // namespace rbm
