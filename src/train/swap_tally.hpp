// Parallel tempering's swap counts as the log and the metrics report them: those of the
// epoch so far and those since the last metrics row, every rank's summed. Checkpoints
// keep both, so a resumed run reports what an uninterrupted one does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rbm {

class SwapTally {
public:
    explicit SwapTally(std::size_t pairs = 0);

    // Adds swaps summed over the ranks, [proposed per pair..., accepted per pair...].
    void add(const std::vector<double>& sums);
    // The lowest pair's fraction accepted since the last call (NaN if none was proposed).
    double take_row_lowest();
    // Each pair's fraction accepted this epoch (NaN where none was proposed); starts the next.
    std::vector<double> take_epoch_rates();

    // As a checkpoint keeps them: [epoch, row][proposed, accepted][pair].
    std::vector<int64_t> stored() const;
    // A checkpoint's tallies; one from before rbm kept them (none) leaves them at 0.
    void restore(const std::vector<int64_t>& stored);

private:
    std::size_t pairs_;
    std::vector<double> epoch_, row_;  // [proposed per pair..., accepted per pair...]
};

}  // namespace rbm
