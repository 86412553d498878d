// What `rbm eval` is asked (EvalRequest) and what it measured (EvalReport), with the
// report's two renderings: the text for a person and the --json object for scripts
// (its keys are listed in docs/evaluation.md). Measuring lives in cmd_eval.cpp; this
// file only knows how the results read.
#pragma once

#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "engine/device_kind.hpp"
#include "eval/ais.hpp"
#include "io/dataset.hpp"

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

inline const double kNone = std::nan("");  // a measure not taken (null in JSON)

// Means per example over the evaluated examples (and the training examples, if given).
struct DataMeasures {
    std::size_t examples = 0;
    double free_energy = kNone, pseudo_likelihood = kNone, reconstruction_xent = kNone;
    std::size_t train_examples = 0;
    double train_free_energy = kNone;
    double wall_s = 0;
};

struct ExactLogZ {
    bool done = false;
    std::size_t enumerated_units = 0;
    double log_z = kNone, wall_s = 0;
};

struct AisLogZ {
    std::vector<double> log_weights;  // every seed's runs, seed s's run k at s * runs + k
    eval::WeightSummary pooled{};
    std::vector<eval::WeightSummary> per_seed;
    double log_z_base = kNone;  // the base-rate model's, which the weights' log mean is added to
    double log_z = kNone, lower = kNone, upper = kNone;
    double seed_spread = kNone;  // largest minus smallest per-seed log Z (with two seeds or more)
    double wall_s = 0;
    bool done() const { return !log_weights.empty(); }
};

struct RaiseLogZ {
    std::size_t examples = 0;  // 0: not run
    double log_z = kNone, lower = kNone, upper = kNone, sd_across_examples = kNone;
    double subset_free_energy = kNone;  // mean free energy of the examples RAISE started from
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

std::string fixed(double x, int digits = 3);  // "nan", "+inf", "-inf" or x with `digits` decimals

void print_text(std::ostream& out, const EvalReport& report);
void print_json(std::ostream& out, const EvalReport& report);

}  // namespace rbm::cli
