// Annealed Importance Sampling (AIS) for the partition function of a Bernoulli RBM, and
// its reverse, RAISE, for a conservative log-likelihood.
//
// Model B is the RBM: E(v, h) = -v.b - h.c - v'Wh. Model A, the base, has W = 0, hidden
// biases 0 and visible biases b_A (the data's smoothed base rates), with the same
// number of hidden units, so
//     log Z_A = sum_i softplus(b_A_i) + n_hidden log 2.
// The intermediate distributions (Salakhutdinov & Murray 2008, "On the quantitative
// analysis of deep belief networks", section 4.1) are p_k(v) ∝ f_k(v) with the hidden
// units summed out:
//     log f_β(v) = (1-β) v.b_A + β v.b + sum_j softplus(β (c_j + v.W[:, j]))
// for 0 = β_0 < β_1 < ... < β_K = 1, so f_0 ∝ p_A and f_K = the RBM's unnormalised p(v).
// The transition T_k that leaves p_k invariant is one Gibbs sweep v -> h -> v of the
// joint at β_k:  h_j ~ σ(β_k (c_j + v.W[:, j])),  v_i ~ σ((1-β_k) b_A_i + β_k (b_i + W[i, :].h)).
// It is reversible (a v -> h -> v sweep is), which RAISE relies on.
//
// Forward AIS (S&M 2008, Neal 2001): x_0 ~ p_A exactly; for k = 1..K
//     log w += log f_k(x_{k-1}) - log f_{k-1}(x_{k-1});   x_k ~ T_k(x_{k-1})  (k < K)
// E[w] = Z_B / Z_A, so log Z_B ≈ log Z_A + log mean(w). By Jensen this underestimates
// log Z in expectation (and so overestimates the log-likelihood).
//
// RAISE (Burda, Grosse & Salakhutdinov 2015, "Accurate and conservative estimates of MRF
// log-likelihood using reverse annealing", section 4): for a test example v, run the
// chain backwards from x_K = v:  for k = K..1:  x_{k-1} ~ T_k(x_k), and
//     log ŵ = log f_K(v) - log Z_A - sum_{k=0}^{K-1} [log f_{k+1}(x_k) - log f_k(x_k)].
// E[ŵ] = p_fwd(v), the probability of v under the forward annealing chain's final state
// (x_0 ~ p_A, x_k ~ T_k(x_{k-1}), k = 1..K) — a model that tends to p_B as the schedule
// lengthens. So log ŵ is a stochastic lower bound on log p_fwd(v), and the log-likelihood
// it gives is conservative. Written as a log Z, each reverse chain yields
//     log Ẑ_rev = log Z_A + sum_{k=0}^{K-1} [log f_{k+1}(x_k) - log f_k(x_k)],
// the reverse-AIS estimator of log Z started at a data point; log p̂(v) = -F(v) - log Ẑ_rev.
//
// Randomness: chain r of seed index s draws from Philox keyed (seed, r, ais) with draw =
// s << 4 | kind and counter step = k, so a chain's numbers (and its weight) do not depend
// on how the chains are split over ranks or batches.
//
// Where the numbers are computed: AnnealingChains holds a batch of chains and performs the
// three operations of the loops above; the loops, the schedule and the statistics know
// only that interface, so the GPU supplies its own (eval/cuda/cuda_annealing_chains.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/params.hpp"

namespace rbm::eval {

// The base-rate model A: W = 0, hidden biases 0, visible biases b_A.
struct BaseModel {
    std::vector<double> vbias;
    std::size_t n_hidden = 0;
    double log_z = 0;  // sum_i softplus(b_A_i) + n_hidden log 2
};

// b_A_i = log(p_i / (1 - p_i)), p_i = (count_i + alpha) / (n + 2 alpha), count_i = sum of
// column i over the n binary rows (Laplace smoothing for alpha = 1).
BaseModel base_rate_model(const std::vector<double>& column_sums, std::size_t n_rows, std::size_t n_hidden,
                          double alpha = 1.0);
BaseModel base_model_from_biases(std::vector<double> vbias, std::size_t n_hidden);

// The inverse temperatures: `intervals` steps shaped as Salakhutdinov & Murray's schedule
// (0 to 0.5, 0.5 to 0.9, 0.9 to 1 with 500 : 4000 : 10000 of the steps). 14500 (the
// default) gives exactly 0..0.5 by 1e-3, 0.5..0.9 by 1e-4, 0.9..1 by 1e-5. Returns
// intervals + 1 values, first 0 and last 1. At least 3 intervals.
inline constexpr std::size_t kDefaultIntervals = 14500;
std::vector<double> beta_schedule(std::size_t intervals = kDefaultIntervals);

// Draw kinds (the low 4 bits of a Philox draw index; the seed index is above them).
enum class AisDraw : uint32_t { base = 0, forward_hidden = 1, forward_visible = 2, reverse_hidden = 3,
                                reverse_visible = 4 };

// A batch of annealing chains, their visible states x, and one log-weight accumulator each.
class AnnealingChains {
public:
    virtual ~AnnealingChains() = default;
    virtual std::size_t size() const = 0;
    // x := exact samples of the base model (draw kind `base`, counter step 0).
    virtual void start_from_base() = 0;
    // x := the given binary rows [size(), n_visible].
    virtual void start_from_rows(const float* rows) = 0;
    // acc_r += log f_{beta_to}(x_r) - log f_{beta_from}(x_r), in double.
    virtual void add_log_ratio(double beta_to, double beta_from) = 0;
    // One Gibbs sweep v -> h -> v at beta; draws counted by `step` with the given kinds.
    virtual void gibbs_sweep(double beta, uint64_t step, AisDraw hidden_kind, AisDraw visible_kind) = 0;
    virtual std::vector<double> accumulated() const = 0;
    virtual std::vector<float> visible() const = 0;  // [size(), n_visible], for tests
};

// One chain: repetition (seed index) and index within it. Its Philox stream is keyed
// (seed, index, ais) and its draws are numbered seed_index << 4 | kind.
struct ChainId {
    uint32_t seed_index = 0;
    uint32_t index = 0;  // below 2^24 (the rank field of a Philox key)
};
// Chains (seed_index, first) .. (seed_index, first + count - 1).
std::vector<ChainId> chain_ids(uint32_t seed_index, uint64_t first, std::size_t count);
// Refuses an empty list and ids that do not fit their Philox fields.
void check_chain_ids(const std::vector<ChainId>& chains);

// Chains per batch (one sgemm per half-sweep over a batch). A chain's draws do not
// depend on its batch's other chains, but the last bits of its products can (OpenBLAS
// picks its kernel by the product's size, and its Haswell and Zen kernels round a row
// with the rows beside it); `rbm eval` therefore cuts the global list of chains into
// batches of this fixed size before dealing them to ranks, each batch runs on one
// thread, and a result is bitwise the same on any number of ranks and threads.
inline constexpr std::size_t kAisBatch = 50;

// The CPU implementation: per half-sweep, a chain whose state is at most 30% ones takes
// its product as a sum of rows (its own arithmetic alone); the batch's other chains one
// sgemm together.
std::unique_ptr<AnnealingChains> make_cpu_annealing_chains(const ParamBuffer& params, const BaseModel& base,
                                                           uint32_t seed, std::vector<ChainId> chains);

// Makes the chains of one batch for a fixed RBM and base model: the CPU's (the default)
// or a GPU's (eval/cuda/cuda_annealing_chains.hpp).
using ChainsFactory = std::function<std::unique_ptr<AnnealingChains>(uint32_t seed, std::vector<ChainId> chains)>;

// Forward AIS: the log-weight log w of each chain, such that log Z ≈ base.log_z + log mean(w)
// over the chains of one seed index. Chains go through in consecutive batches of `batch`,
// made by `make` (empty: the CPU's).
std::vector<double> forward_ais_log_weights(const ParamBuffer& params, const BaseModel& base,
                                            const std::vector<double>& betas, uint32_t seed,
                                            const std::vector<ChainId>& chains, std::size_t batch = kAisBatch,
                                            const ChainsFactory& make = {});

// Reverse AIS from given visible states (RAISE when they are test examples): for chain r,
// started at row r of `start_rows` [chains.size(), n_visible], log Ẑ_rev,r = base.log_z +
// the sum of the reverse increments (see the top of this file).
std::vector<double> reverse_ais_log_z(const ParamBuffer& params, const BaseModel& base,
                                      const std::vector<double>& betas, uint32_t seed,
                                      const std::vector<ChainId>& chains, const float* start_rows,
                                      std::size_t batch = kAisBatch, const ChainsFactory& make = {});

// Statistics of importance weights given as logs.
struct WeightSummary {
    std::size_t n = 0;
    double log_mean = 0;   // log( (1/n) sum w )
    double log_lower = 0;  // log(mean - 3 σ_mean)  (-inf when mean <= 3 σ_mean)
    double log_upper = 0;  // log(mean + 3 σ_mean);  σ_mean = sd(w) / sqrt(n), sd with n - 1
    double ess = 0;        // (sum w)^2 / sum w^2, from 1 (one weight dominates) to n (all equal)
};
WeightSummary summarize_log_weights(const std::vector<double>& log_w);

double log_mean_exp(const std::vector<double>& x);

}  // namespace rbm::eval
