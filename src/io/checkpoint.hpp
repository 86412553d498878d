// HDF5 checkpoints: everything a run needs to continue exactly, readable with h5py or
// h5dump without rbm. Written to a temporary name, flushed, fsynced and renamed, so a
// checkpoint on disk is either complete or absent.
//
// Layout (format_version 1):
//   /                 attrs: rbm_file_kind="checkpoint", format_version, rbm_version
//   /model/W          float32 [n_visible, n_hidden]   attrs on /model: n_visible, n_hidden,
//   /model/vbias      float32 [n_visible]                visible_type, hidden_type ("bernoulli"),
//                                                        image_height, image_width (the training
//                                                        data's images; 0, 0: not images)
//   /model/hbias      float32 [n_hidden]
//   /optimizer/velocity_W, velocity_vbias, velocity_hbias   (momentum state, same shapes)
//   /chains/hidden    uint8 [n_chains_total, n_hidden]  persistent chains, all ranks in rank order
//   /chains/rank      int32 [n_chains_total]  the rank whose Philox stream drew each row
//   /chains/tempered_hidden uint8 [levels, n_chains_total, n_hidden]  parallel tempering
//                     (--method pt) only: the tempered levels' chains, each level's rows
//                     laid out as /chains/hidden's (the model's level, inverse temperature 1)
//   /chains/tempered_betas float32 [levels]  their inverse temperatures, decreasing
//   /chains/tempered_swaps int64 [2, 2, levels]  PT's swap tallies, all ranks together:
//                     [this epoch's so far, those since the last metrics row][proposed,
//                     accepted][pair m: levels m and m + 1]; absent in checkpoints written
//                     before rbm kept them (a resume from one starts them at 0)
//   /state            attrs: step, epoch, step_in_epoch, seed, world_size, steps_per_epoch,
//                     train_rows, data_fingerprint (the training rows: a resume checks them)
//   /state/epoch_metric_sums float64 [6 x world_size]: each rank's running metric sums
//   /centering/visible_offset float32 [n_visible], /centering/hidden_offset float32
//                     [n_hidden]: a centered run's offsets (absent otherwise); the model
//                     in /model is the plain RBM either way
//   /config           attr "ini": the full configuration as INI text
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/params.hpp"

namespace rbm {

inline constexpr int64_t kCheckpointFormatVersion = 1;

struct Checkpoint {
    ParamBuffer params;                 // [W | vbias | hbias]
    ParamBuffer velocity;               // same layout
    std::string visible_type = "bernoulli";
    std::string hidden_type = "bernoulli";
    uint64_t image_height = 0, image_width = 0;  // the training data's image shape, 0 x 0: not images
    bool image_shape_stored = false;             // false when read from a checkpoint older than these
    std::vector<uint8_t> chains_hidden; // [n_chains_total, n_hidden]
    std::vector<int32_t> chains_rank;   // [n_chains_total]
    std::vector<uint8_t> tempered_hidden; // PT: [levels][n_chains_total][n_hidden]; else empty
    std::vector<float> tempered_betas;    // PT: [levels]
    std::vector<int64_t> tempered_swaps;  // PT: [2][2][levels] (see the layout above), or empty
    uint64_t step = 0;                  // optimizer steps taken
    uint64_t epoch = 0;                 // epoch the next step belongs to
    uint64_t step_in_epoch = 0;         // steps of `epoch` already taken
    uint64_t steps_per_epoch = 0;
    uint32_t seed = 0;
    uint32_t world_size = 1;
    uint64_t train_rows = 0;            // 0 in checkpoints written before these two were kept
    uint64_t data_fingerprint = 0;      // RunData::fingerprint
    std::vector<double> epoch_metric_sums;
    std::vector<float> visible_offset;  // centering's mu and lambda; empty when not centered
    std::vector<float> hidden_offset;
    std::string config_ini;

    std::size_t n_chains_total() const {
        return params.shape.n_hidden ? chains_hidden.size() / params.shape.n_hidden : 0;
    }
};

// Parallel tempering's chains as gathered from the ranks, rank by rank and within each
// rank level by level ([rank][level][rows]), in the checkpoint's order, level by level and
// within each level rank by rank ([level][rank][rows]): each level then reads like
// /chains/hidden. `gathered` holds ranks x levels equal blocks.
std::vector<uint8_t> tempered_chains_by_level(const std::vector<uint8_t>& gathered, std::size_t levels,
                                              std::size_t ranks);

// Writes `path` atomically (path + ".tmp", flush, fsync, rename, fsync of the directory).
void write_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads and validates a checkpoint; rbm::Error names the file and what is wrong
// (not HDF5, not a checkpoint, other format version, shapes that disagree, truncated).
Checkpoint read_checkpoint(const std::string& path);

// Checkpoint file name for a step inside a run directory: DIR/checkpoints/step-0000001234.h5
std::string checkpoint_path(const std::string& run_dir, uint64_t step);

// Newest complete checkpoint in run_dir/checkpoints (highest step; *.tmp ignored), if any.
std::optional<std::string> find_newest_checkpoint(const std::string& run_dir);

// Deletes all but the newest `keep` checkpoints (keep == 0 keeps all).
void prune_checkpoints(const std::string& run_dir, std::size_t keep);

}  // namespace rbm
