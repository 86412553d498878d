// Hidden-unit features of a data set, as `rbm transform` writes them for a downstream
// model (a classifier reading f["features"] and f["labels"] with h5py):
//   /features float32 [n_examples, n_hidden]  p(h_j = 1 | v) of each example
//   /labels   uint8   [n_examples]            the examples' labels, when given
//   / attrs: rbm_file_kind="features", format_version, rbm_version, and how they were
//            made (checkpoint, checkpoint_step, data_file, labels_file, binarize, ...)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/h5.hpp"

namespace rbm {

struct FeatureSet {
    std::size_t n_examples = 0, n_hidden = 0;
    std::vector<float> features;   // [n_examples, n_hidden]
    std::vector<uint8_t> labels;   // [n_examples], or empty
    h5::RootAttrs attrs;           // how they were made
};

// Atomic write (temporary name, fsync, rename).
void write_features(const std::string& path, const FeatureSet& set);
// Fails, naming `path`, unless writing there would replace nothing or only a features file.
void check_features_destination(const std::string& path);
FeatureSet read_features(const std::string& path);

}  // namespace rbm
