// What `rbm eval` is asked (EvalRequest) and what it measured (EvalReport), with the
// report's two renderings: the text for a person and the --json object for scripts
// (its keys are listed in docs/evaluation.md). Measuring lives in cmd_eval.cpp and
// src/eval/estimates; this file only knows how the results read.
#pragma once

#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "engine/device_kind.hpp"
#include "eval/ais.hpp"
#include "eval/estimates.hpp"
#include "io/dataset.hpp"
#include "util/shortest_text.hpp"

namespace rbm::cli {

struct EvalRequest {
    std::string checkpoint, data, train_data;
    std::size_t limit = 0, train_limit = 0;
    BinarizeSpec binarize{Binarization::stochastic, 0.5f, 0};
    std::size_t runs = 100, seeds = 3, intervals = eval::kDefaultIntervals;
    std::size_t raise_examples = 100, raise_chains = 1;
    uint32_t seed = 123;
    std::string exact = "auto";
    double smoothing = 1.0;
    bool json = false;
    int threads = 0;
    DeviceKind device = DeviceKind::auto_select;
};

using eval::kNone;  // a measure not taken (null in JSON)
using eval::AisLogZ;
using eval::ExactLogZ;
using eval::RaiseLogZ;

// Means per example over the evaluated examples (and the training examples, if given).
struct DataMeasures {
    std::size_t examples = 0;
    double free_energy = kNone, pseudo_likelihood = kNone, reconstruction_xent = kNone;
    std::size_t train_examples = 0;
    double train_free_energy = kNone;
    double wall_s = 0;
};

struct EvalReport {
    EvalRequest request;
    uint64_t checkpoint_step = 0;
    std::size_t n_visible = 0, n_hidden = 0;
    int ranks = 1;
    std::string annealing_device;
    DataMeasures data;
    ExactLogZ exact;
    AisLogZ ais;
    RaiseLogZ raise;
    std::string method = "none";  // where log_z comes from: exact, ais or none
    double log_z = kNone, log_z_lower = kNone, log_z_upper = kNone;
    std::vector<std::string> warnings;
    double wall_s = 0;

    // -mean F - log Z: the mean log-likelihood per example with a given log Z
    double log_likelihood(double with_log_z) const { return -data.free_energy - with_log_z; }
};

using rbm::fixed;  // util/shortest_text.hpp

void print_text(std::ostream& out, const EvalReport& report);
void print_json(std::ostream& out, const EvalReport& report);

}  // namespace rbm::cli
