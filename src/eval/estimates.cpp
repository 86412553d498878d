// rbm eval's estimates over ranks (see estimates.hpp).
#include "eval/estimates.hpp"

#include <algorithm>
#include <chrono>

#include "eval/metrics.hpp"
#include "model/exact.hpp"
#include "util/clock.hpp"
#include "util/shortest_text.hpp"

namespace rbm::eval {
namespace {

constexpr std::size_t kExactBlocks = 256;  // exact log Z's state blocks, dealt to ranks

// Every rank computes its slice of a global vector; the sum over ranks (zeros elsewhere)
// gives all ranks the whole, exactly.
std::vector<double> assemble(const std::vector<double>& local, std::size_t first, std::size_t total,
                             const Communicator& comm) {
    std::vector<double> all(total, 0.0);
    std::copy(local.begin(), local.end(), all.begin() + std::ptrdiff_t(first));
    comm.allreduce_sum(all.data(), all.size());
    return all;
}

// Batches of kAisBatch chains of `total`, dealt to ranks batch by batch, so that every
// batch (and so every weight, bitwise) is the same on any number of ranks: this rank's
// chains [first, last).
std::pair<std::size_t, std::size_t> chain_share(std::size_t total, const Communicator& comm) {
    const auto [b0, b1] = share((total + kAisBatch - 1) / kAisBatch, comm);
    return {std::min(total, b0 * kAisBatch), std::min(total, b1 * kAisBatch)};
}

}  // namespace

std::pair<std::size_t, std::size_t> share(std::size_t n, const Communicator& comm) {
    return {n * std::size_t(comm.rank()) / std::size_t(comm.size()),
            n * std::size_t(comm.rank() + 1) / std::size_t(comm.size())};
}

BaseModel base_rate_model(const Dataset& data, std::size_t n_hidden, double smoothing) {
    std::vector<double> column_sums(data.n_cols, 0.0);
    for (std::size_t k = 0; k < data.n_rows; ++k)
        for (std::size_t i = 0; i < data.n_cols; ++i) column_sums[i] += data.row(k)[i];
    return base_rate_model(column_sums, data.n_rows, n_hidden, smoothing);
}

// The states are cut into blocks before the blocks are dealt to ranks (as the AIS batches
// are) and each block's Gray walk starts afresh, so the sums round the same way, and log Z
// is bitwise the same, for any rank count.
ExactLogZ exact_log_z(const ParamBuffer& params, const Communicator& comm, const ProgressLine& progress) {
    const auto t0 = Clock::now();
    ExactLogZ e;
    e.done = true;
    e.enumerated_units = enumerated_units(params.shape);
    const uint64_t states = uint64_t(1) << e.enumerated_units;
    const std::size_t blocks = std::size_t(std::min<uint64_t>(kExactBlocks, states));
    const auto [k0, k1] = share(blocks, comm);
    std::vector<double> local;
    for (std::size_t k = k0; k < k1; ++k)
        local.push_back(log_partition_partial(params, states * k / blocks, states * (k + 1) / blocks));
    e.log_z = exact::log_sum_exp(assemble(local, k0, blocks, comm));
    e.wall_s = seconds_since(t0);
    progress("exact log Z " + fixed(e.log_z, 4) + " (2^" + std::to_string(e.enumerated_units) + " states) in " +
             fixed(e.wall_s, 1) + " s");
    return e;
}

// All seeds' runs form one list of chains (seed s, run k at s * runs + k).
AisLogZ forward_ais(const AisPlan& plan, const Annealing& a, const Communicator& comm,
                    const ProgressLine& progress) {
    const auto t0 = Clock::now();
    AisLogZ ais;
    ais.log_z_base = a.base.log_z;
    const std::size_t total = plan.runs * plan.seeds;
    const auto [g0, g1] = chain_share(total, comm);
    std::vector<ChainId> ids;
    for (std::size_t g = g0; g < g1; ++g) ids.push_back({uint32_t(g / plan.runs), uint32_t(g % plan.runs)});
    std::vector<double> local;
    if (!ids.empty()) local = forward_ais_log_weights(a.params, a.base, a.betas, plan.seed, ids, kAisBatch, a.make);
    ais.log_weights = assemble(local, g0, total, comm);
    ais.wall_s = seconds_since(t0);
    double lowest = INFINITY, highest = -INFINITY;
    for (std::size_t s = 0; s < plan.seeds; ++s) {
        const auto first = ais.log_weights.begin() + std::ptrdiff_t(s * plan.runs);
        ais.per_seed.push_back(summarize_log_weights(std::vector<double>(first, first + std::ptrdiff_t(plan.runs))));
        lowest = std::min(lowest, ais.per_seed.back().log_mean);
        highest = std::max(highest, ais.per_seed.back().log_mean);
    }
    if (plan.seeds > 1) ais.seed_spread = highest - lowest;
    ais.pooled = summarize_log_weights(ais.log_weights);
    ais.log_z = a.base.log_z + ais.pooled.log_mean;
    ais.lower = a.base.log_z + ais.pooled.log_lower;
    ais.upper = a.base.log_z + ais.pooled.log_upper;
    std::string line = "AIS, " + std::to_string(plan.seeds) + " seed(s) x " + std::to_string(plan.runs) + " runs x " +
                       std::to_string(a.betas.size() - 1) + " steps in " + fixed(ais.wall_s, 1) +
                       " s; log Z per seed:";
    for (const auto& ps : ais.per_seed)
        line.append(" ").append(fixed(a.base.log_z + ps.log_mean, 3)).append(" (ESS ").append(fixed(ps.ess, 1)).append(")");
    progress(line);
    return ais;
}

// Per example, p̂(v) = f(v) mean_m exp(-log Ẑ_m), i.e. log Ẑ(v) = -log mean_m exp(-log Ẑ_m);
// the estimate is their mean over examples, its bounds +-3 standard errors.
RaiseLogZ reverse_ais(std::size_t examples, std::size_t chains_per_example, uint32_t seed, const Annealing& a,
                      const Dataset& data, const Communicator& comm, const ProgressLine& progress) {
    const auto t0 = Clock::now();
    const std::size_t nv = data.n_cols, n = data.n_rows;
    RaiseLogZ v;
    v.examples = std::min(examples, n);
    const std::size_t chains = v.examples * chains_per_example;
    auto example_of = [&](std::size_t chain) { return (chain / chains_per_example) * n / v.examples; };
    const auto [c0, c1] = chain_share(chains, comm);
    std::vector<double> local;
    if (c1 > c0) {
        std::vector<float> starts((c1 - c0) * nv);
        for (std::size_t c = c0; c < c1; ++c)
            std::copy(data.row(example_of(c)), data.row(example_of(c)) + nv, starts.begin() + (c - c0) * nv);
        local = reverse_ais_log_z(a.params, a.base, a.betas, seed, chain_ids(0, c0, c1 - c0), starts.data(),
                                  kAisBatch, a.make);
    }
    const std::vector<double> chain_log_z = assemble(local, c0, chains, comm);
    std::vector<double> per_example(v.examples);
    std::vector<float> started_from(v.examples * nv);
    for (std::size_t e = 0; e < v.examples; ++e) {
        std::vector<double> neg(chains_per_example);
        for (std::size_t m = 0; m < chains_per_example; ++m) neg[m] = -chain_log_z[e * chains_per_example + m];
        per_example[e] = -log_mean_exp(neg);
        const float* row = data.row(example_of(e * chains_per_example));
        std::copy(row, row + nv, started_from.begin() + e * nv);
    }
    double mean = 0, free_energy = 0;
    for (double x : per_example) mean += x;
    for (double f : free_energies(a.params, started_from.data(), v.examples)) free_energy += f;
    mean /= double(v.examples);
    v.subset_free_energy = free_energy / double(v.examples);
    double ss = 0;
    for (double x : per_example) ss += (x - mean) * (x - mean);
    v.sd_across_examples = v.examples > 1 ? std::sqrt(ss / double(v.examples - 1)) : kNone;
    const double se = v.examples > 1 ? v.sd_across_examples / std::sqrt(double(v.examples)) : INFINITY;
    v.log_z = mean;
    v.lower = mean - 3 * se;
    v.upper = mean + 3 * se;
    v.wall_s = seconds_since(t0);
    progress("RAISE from " + std::to_string(v.examples) + " examples: log Z " + fixed(v.log_z, 4) + ", " +
             fixed(v.wall_s, 1) + " s");
    return v;
}

}  // namespace rbm::eval
