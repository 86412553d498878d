// What `rbm eval` estimates, split over MPI ranks so that the numbers do not depend on the
// rank count: the exact log Z by enumeration (blocks of states dealt to ranks), forward AIS
// (batches of chains dealt to ranks) and RAISE from the evaluated examples. The command
// (src/cli/cmd_eval.cpp) reads the files and reports; the estimators are ais.hpp's and
// metrics.hpp's, and docs/evaluation.md explains them.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.hpp"
#include "eval/ais.hpp"
#include "model/dataset.hpp"
#include "model/params.hpp"

namespace rbm::eval {

inline const double kNone = std::nan("");  // a measure not taken (null in JSON)

// A line of progress for the person waiting (the command prints the root rank's).
using ProgressLine = std::function<void(const std::string&)>;

// This rank's share [first, last) of n items dealt out in rank order.
std::pair<std::size_t, std::size_t> share(std::size_t n, const Communicator& comm);

struct ExactLogZ {
    bool done = false;
    std::size_t enumerated_units = 0;
    double log_z = kNone, wall_s = 0;
};

struct AisLogZ {
    std::vector<double> log_weights;  // every seed's runs, seed s's run k at s * runs + k
    WeightSummary pooled{};
    std::vector<WeightSummary> per_seed;
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

// What both annealing directions share: the model, the base-rate model they start from,
// the schedule, and where the chains run (an empty factory: the CPU's).
struct Annealing {
    const ParamBuffer& params;
    BaseModel base;
    std::vector<double> betas;
    ChainsFactory make;
};

// How many forward AIS chains: `runs` for each of `seeds` seeds (seed s numbered s).
struct AisPlan {
    std::size_t runs = 100, seeds = 3;
    uint32_t seed = 123;  // the streams' seed
};

// The base-rate model (AIS's start) from the examples' marginals.
BaseModel base_rate_model(const Dataset& data, std::size_t n_hidden, double smoothing);

// log Z by enumerating the smaller layer, bitwise the same on any rank count.
ExactLogZ exact_log_z(const ParamBuffer& params, const Communicator& comm, const ProgressLine& progress);

// Forward AIS from the base-rate model: log Z with +-3 sigma bounds, per seed and pooled.
AisLogZ forward_ais(const AisPlan& plan, const Annealing& a, const Communicator& comm,
                    const ProgressLine& progress);

// RAISE from `examples` evenly spaced rows of `data`, `chains_per_example` chains each.
RaiseLogZ reverse_ais(std::size_t examples, std::size_t chains_per_example, uint32_t seed, const Annealing& a,
                      const Dataset& data, const Communicator& comm, const ProgressLine& progress);

}  // namespace rbm::eval
