// Parallel tempering's swap tallies: see swap_tally.hpp. Whole counts held in doubles add
// exactly, so how often the ranks' counts are collected changes nothing they report.
#include "train/swap_tally.hpp"

#include <algorithm>
#include <cmath>

#include "util/check.hpp"

namespace rbm {

SwapTally::SwapTally(std::size_t pairs) : pairs_(pairs), epoch_(2 * pairs, 0.0), row_(2 * pairs, 0.0) {}

void SwapTally::add(const std::vector<double>& sums) {
    RBM_CHECK(sums.size() == 2 * pairs_, "swap counts for " << sums.size() / 2 << " pairs, expected " << pairs_);
    for (std::size_t e = 0; e < sums.size(); ++e) {
        epoch_[e] += sums[e];
        row_[e] += sums[e];
    }
}

double SwapTally::take_row_lowest() {
    double lowest = std::nan("");
    for (std::size_t m = 0; m < pairs_; ++m)
        if (row_[m] > 0) lowest = std::fmin(lowest, row_[pairs_ + m] / row_[m]);  // fmin skips the NaN
    std::fill(row_.begin(), row_.end(), 0.0);
    return lowest;
}

std::vector<double> SwapTally::take_epoch_rates() {
    std::vector<double> rates(pairs_, std::nan(""));
    for (std::size_t m = 0; m < pairs_; ++m)
        if (epoch_[m] > 0) rates[m] = epoch_[pairs_ + m] / epoch_[m];
    std::fill(epoch_.begin(), epoch_.end(), 0.0);
    return rates;
}

std::vector<int64_t> SwapTally::stored() const {
    std::vector<int64_t> out;
    for (const std::vector<double>* tally : {&epoch_, &row_})
        for (double count : *tally) out.push_back(int64_t(count));
    return out;
}

void SwapTally::restore(const std::vector<int64_t>& stored) {
    if (stored.empty()) return;
    RBM_CHECK(stored.size() == 4 * pairs_, stored.size() << " stored swap tallies for " << pairs_ << " pairs");
    for (std::size_t e = 0; e < 2 * pairs_; ++e) {
        epoch_[e] = double(stored[e]);
        row_[e] = double(stored[2 * pairs_ + e]);
    }
}

}  // namespace rbm
