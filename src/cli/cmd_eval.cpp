// `rbm eval`: the measured quality of a checkpoint on a data set — the mean
// log-likelihood with log Z from AIS (and RAISE beside it, and the exact value when the
// smaller layer can be enumerated), the pseudo-likelihood over all bits, the
// reconstruction cross-entropy and the free-energy gap. AIS runs, RAISE chains,
// examples and enumerated states are split over MPI ranks; every chain draws from its
// own Philox stream, so the numbers do not depend on the number of ranks.
// Estimators and formulas: src/eval/ais.hpp, src/eval/metrics.hpp, docs/evaluation.md.
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>

#include "cli/commands.hpp"
#include "cli/eval_device.hpp"
#include "cli/eval_report.hpp"
#include "cli/options.hpp"
#include "dist/communicator.hpp"
#include "engine/engine_factory.hpp"
#include "eval/ais.hpp"
#include "eval/metrics.hpp"
#include "io/checkpoint.hpp"
#include "io/dataset.hpp"
#include "util/check.hpp"
#include "util/choices.hpp"

namespace rbm::cli {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const char* kEvalUsage =
    "usage: rbm eval --checkpoint FILE --data FILE [options]\n"
    "\n"
    "Measures a checkpoint's RBM on --data (binarised; stochastically with seed 0 by default,\n"
    "as the literature's MNIST numbers are): the mean log-likelihood per example in nats, with\n"
    "log Z from Annealed Importance Sampling (Salakhutdinov & Murray 2008: base-rate model from\n"
    "the data's marginals, --runs runs for each of --seeds independent seeds, the +-3 sigma\n"
    "bounds, the effective sample size of the weights and the spread across seeds), RAISE (reverse\n"
    "AIS from test examples, Burda et al. 2015: a conservative estimate) beside it, and the exact\n"
    "log Z when the smaller layer can be enumerated; also the pseudo-likelihood over all bits,\n"
    "the reconstruction cross-entropy and, with --train-data, the free-energy gap.\n"
    "Under mpirun every rank runs its share of the chains; results do not depend on the rank\n"
    "count. --json prints one JSON object on stdout (progress and warnings go to stderr).\n";

EvalRequest parse_request(const po::variables_map& vm) {
    EvalRequest r;
    const std::string origin = "command line";
    auto text = [&](const char* key) { return vm[key].as<std::string>(); };
    if (!vm.count("checkpoint")) fail("--checkpoint is required (a checkpoint file written by rbm train)");
    if (!vm.count("data")) fail("--data is required (the examples to evaluate: IDX or FILE.h5:/dataset)");
    r.checkpoint = text("checkpoint");
    r.data = text("data");
    if (vm.count("train-data")) r.train_data = text("train-data");
    if (vm.count("limit")) r.limit = parse_count("--limit", text("limit"), origin, 0, UINT64_MAX);
    if (vm.count("train-limit") && r.train_data.empty()) fail("--train-limit needs --train-data");
    if (vm.count("train-data") && r.train_data.empty()) fail("--train-data must name a file");
    if (vm.count("train-limit")) r.train_limit = parse_count("--train-limit", text("train-limit"), origin, 0, UINT64_MAX);
    r.binarize = parse_binarize_once(vm, r.binarize);
    if (vm.count("runs")) r.runs = parse_count("--runs", text("runs"), origin, 0, 1u << 24);
    if (vm.count("seeds")) r.seeds = parse_count("--seeds", text("seeds"), origin, 1, 1000);
    if (vm.count("betas")) r.intervals = parse_count("--betas", text("betas"), origin, 3, 100000000);
    if (vm.count("raise-examples"))
        r.raise_examples = parse_count("--raise-examples", text("raise-examples"), origin, 0, 1u << 24);
    if (vm.count("raise-chains")) r.raise_chains = parse_count("--raise-chains", text("raise-chains"), origin, 1, 1u << 16);
    if (r.runs * r.seeds >= (1u << 24)) fail("--runs x --seeds must stay below 2^24 AIS chains");
    if (r.raise_examples * r.raise_chains >= (1u << 24))
        fail("--raise-examples x --raise-chains must stay below 2^24 chains");
    if (vm.count("seed")) r.seed = uint32_t(parse_count("--seed", text("seed"), origin, 0, UINT32_MAX));
    if (vm.count("exact")) {
        r.exact = text("exact");
        if (r.exact != "auto" && r.exact != "yes" && r.exact != "no")
            fail("--exact: '", r.exact, "' is not one of auto, yes, no");
    }
    if (vm.count("base-smoothing"))
        r.smoothing = parse_real("--base-smoothing", text("base-smoothing"), origin, 1e-12, 1e12);
    if (vm.count("threads")) r.threads = int(parse_count("--threads", text("threads"), origin, 0, 1024));
    if (vm.count("device")) r.device = parse_device(text("device"), origin + ": --device");
    r.json = vm.count("json") > 0;
    return r;
}

constexpr std::size_t kExactBlocks = 256;  // exact log Z's state blocks, dealt to ranks

// Rows [rank n / P, (rank + 1) n / P).
std::pair<std::size_t, std::size_t> share(std::size_t n, const Communicator& comm) {
    return {n * std::size_t(comm.rank()) / std::size_t(comm.size()),
            n * std::size_t(comm.rank() + 1) / std::size_t(comm.size())};
}

// Every rank computes its slice of a global vector; the sum over ranks (zeros elsewhere)
// gives all ranks the whole, exactly.
std::vector<double> assemble(const std::vector<double>& local, std::size_t first, std::size_t total,
                             const Communicator& comm) {
    std::vector<double> all(total, 0.0);
    std::copy(local.begin(), local.end(), all.begin() + std::ptrdiff_t(first));
    comm.allreduce_sum(all.data(), all.size());
    return all;
}

Dataset read_binary(const std::string& spec, RowRange range, const EvalRequest& r) {
    Dataset d = read_rows(spec, range);
    binarize(d, r.binarize);
    if (!is_binary(d))
        fail(spec, ": the log-likelihood of a Bernoulli RBM needs binary data; these values are not 0/1 "
             "(use --binarize stochastic or threshold)");
    return d;
}


double log_sum_exp(const std::vector<double>& x) {
    double top = -std::numeric_limits<double>::infinity(), sum = 0;
    for (double v : x) top = std::max(top, v);
    for (double v : x) sum += std::exp(v - top);
    return top + std::log(sum);
}

// Progress lines on stderr, from the root rank only.
struct Progress {
    bool root;
    void operator()(const std::string& line) const {
        if (root) std::cerr << "eval: " << line << std::endl;
    }
};

// The evaluated examples (every rank holds them all: RAISE may start from any) are split
// over ranks for the means; so are the training examples, which each rank reads its share of.
DataMeasures measure_data(const EvalRequest& r, const ParamBuffer& params, const Dataset& data,
                          const Communicator& comm, const Progress& progress) {
    const auto t0 = Clock::now();
    DataMeasures m;
    m.examples = data.n_rows;
    const auto [d0, d1] = share(data.n_rows, comm);
    const eval::DataSums local = d1 > d0 ? eval::data_sums(params, data.row(d0), d1 - d0, true) : eval::DataSums{};
    double sums[3] = {local.free_energy, local.pseudo_likelihood, local.reconstruction_xent};
    comm.allreduce_sum(sums, 3);
    m.free_energy = sums[0] / double(m.examples);
    m.pseudo_likelihood = sums[1] / double(m.examples);
    m.reconstruction_xent = sums[2] / double(m.examples);
    if (!r.train_data.empty()) {
        const SourceInfo info = probe_source(r.train_data);
        if (info.n_cols != params.shape.n_visible)
            fail(r.train_data, " has ", info.n_cols, " values per example, the model ", params.shape.n_visible);
        m.train_examples = r.train_limit ? std::min(r.train_limit, info.n_rows) : info.n_rows;
        if (m.train_examples == 0) fail(r.train_data, ": no examples");
        const auto [t0_row, t1_row] = share(m.train_examples, comm);
        double sum = 0;
        if (t1_row > t0_row) {
            const Dataset train = read_binary(r.train_data, {t0_row, t1_row}, r);
            for (double f : eval::free_energies(params, train.values.data(), train.n_rows)) sum += f;
        }
        comm.allreduce_sum(&sum, 1);
        m.train_free_energy = sum / double(m.train_examples);
    }
    m.wall_s = seconds_since(t0);
    progress("data measures on " + std::to_string(m.examples) + " examples in " + fixed(m.wall_s, 1) + " s");
    return m;
}

// --exact auto enumerates when the smaller layer has at most 25 units and 2^units x the
// other layer stays within 2^32; --exact yes up to 26 units.
bool wants_exact(const EvalRequest& r, const RbmShape& shape) {
    const std::size_t units = eval::enumerated_units(shape), others = std::max(shape.n_visible, shape.n_hidden);
    if (r.exact == "yes" && units > 26)
        fail("--exact yes: the smaller layer has ", units, " units; enumeration stops at 26");
    const bool fits = units <= 25 && std::ldexp(double(others), int(units)) <= std::ldexp(1.0, 32);
    return r.exact == "yes" || (r.exact == "auto" && fits);
}

// The states are cut into blocks before the blocks are dealt to ranks (as the AIS batches
// are) and each block's Gray walk starts afresh, so the sums round the same way, and log Z
// is bitwise the same, for any rank count.
ExactLogZ exact_log_z(const ParamBuffer& params, const Communicator& comm, const Progress& progress) {
    const auto t0 = Clock::now();
    ExactLogZ e;
    e.done = true;
    e.enumerated_units = eval::enumerated_units(params.shape);
    const uint64_t states = uint64_t(1) << e.enumerated_units;
    const std::size_t blocks = std::size_t(std::min<uint64_t>(kExactBlocks, states));
    const auto [k0, k1] = share(blocks, comm);
    std::vector<double> local;
    for (std::size_t k = k0; k < k1; ++k)
        local.push_back(eval::log_partition_partial(params, states * k / blocks, states * (k + 1) / blocks));
    e.log_z = log_sum_exp(assemble(local, k0, blocks, comm));
    e.wall_s = seconds_since(t0);
    progress("exact log Z " + fixed(e.log_z, 4) + " (2^" + std::to_string(e.enumerated_units) + " states) in " +
             fixed(e.wall_s, 1) + " s");
    return e;
}

// The base-rate model (AIS's start) from the evaluated examples' marginals.
eval::BaseModel base_rate_model(const Dataset& data, std::size_t n_hidden, double smoothing) {
    std::vector<double> column_sums(data.n_cols, 0.0);
    for (std::size_t k = 0; k < data.n_rows; ++k)
        for (std::size_t i = 0; i < data.n_cols; ++i) column_sums[i] += data.row(k)[i];
    return eval::base_rate_model(column_sums, data.n_rows, n_hidden, smoothing);
}

// What both annealing directions share.
struct Annealing {
    const ParamBuffer& params;
    eval::BaseModel base;
    std::vector<double> betas;
    AnnealingDevice device;
};

// Batches of eval::kAisBatch chains of `total`, dealt to ranks batch by batch, so that every
// batch (and so every weight, bitwise) is the same on any number of ranks: this rank's
// chains [first, last).
std::pair<std::size_t, std::size_t> chain_share(std::size_t total, const Communicator& comm) {
    const auto [b0, b1] = share((total + eval::kAisBatch - 1) / eval::kAisBatch, comm);
    return {std::min(total, b0 * eval::kAisBatch), std::min(total, b1 * eval::kAisBatch)};
}

// Forward AIS: all seeds' runs form one list of chains (seed s, run k at s * runs + k).
AisLogZ forward_ais(const EvalRequest& r, const Annealing& a, const Communicator& comm, const Progress& progress) {
    const auto t0 = Clock::now();
    AisLogZ ais;
    ais.log_z_base = a.base.log_z;
    const std::size_t total = r.runs * r.seeds;
    const auto [g0, g1] = chain_share(total, comm);
    std::vector<eval::ChainId> ids;
    for (std::size_t g = g0; g < g1; ++g) ids.push_back({uint32_t(g / r.runs), uint32_t(g % r.runs)});
    std::vector<double> local;
    if (!ids.empty())
        local = eval::forward_ais_log_weights(a.params, a.base, a.betas, r.seed, ids, eval::kAisBatch, a.device.make);
    ais.log_weights = assemble(local, g0, total, comm);
    ais.wall_s = seconds_since(t0);
    double lowest = INFINITY, highest = -INFINITY;
    for (std::size_t s = 0; s < r.seeds; ++s) {
        const auto first = ais.log_weights.begin() + std::ptrdiff_t(s * r.runs);
        ais.per_seed.push_back(eval::summarize_log_weights(std::vector<double>(first, first + std::ptrdiff_t(r.runs))));
        lowest = std::min(lowest, ais.per_seed.back().log_mean);
        highest = std::max(highest, ais.per_seed.back().log_mean);
    }
    if (r.seeds > 1) ais.seed_spread = highest - lowest;
    ais.pooled = eval::summarize_log_weights(ais.log_weights);
    ais.log_z = a.base.log_z + ais.pooled.log_mean;
    ais.lower = a.base.log_z + ais.pooled.log_lower;
    ais.upper = a.base.log_z + ais.pooled.log_upper;
    std::string line = "AIS, " + std::to_string(r.seeds) + " seed(s) x " + std::to_string(r.runs) + " runs x " +
                       std::to_string(r.intervals) + " steps in " + fixed(ais.wall_s, 1) + " s; log Z per seed:";
    for (const auto& ps : ais.per_seed)
        line.append(" ").append(fixed(a.base.log_z + ps.log_mean, 3)).append(" (ESS ").append(fixed(ps.ess, 1)).append(")");
    progress(line);
    return ais;
}

// RAISE from evenly spaced examples, --raise-chains per example. Per example,
// p̂(v) = f(v) mean_m exp(-log Ẑ_m), i.e. log Ẑ(v) = -log mean_m exp(-log Ẑ_m); the
// estimate is their mean over examples, its bounds +-3 standard errors.
RaiseLogZ reverse_ais(const EvalRequest& r, const Annealing& a, const Dataset& data, const Communicator& comm,
                      const Progress& progress) {
    const auto t0 = Clock::now();
    const std::size_t nv = data.n_cols, n = data.n_rows;
    RaiseLogZ v;
    v.examples = std::min(r.raise_examples, n);
    const std::size_t chains = v.examples * r.raise_chains;
    auto example_of = [&](std::size_t chain) { return (chain / r.raise_chains) * n / v.examples; };
    const auto [c0, c1] = chain_share(chains, comm);
    std::vector<double> local;
    if (c1 > c0) {
        std::vector<float> starts((c1 - c0) * nv);
        for (std::size_t c = c0; c < c1; ++c)
            std::copy(data.row(example_of(c)), data.row(example_of(c)) + nv, starts.begin() + (c - c0) * nv);
        local = eval::reverse_ais_log_z(a.params, a.base, a.betas, r.seed, eval::chain_ids(0, c0, c1 - c0),
                                        starts.data(), eval::kAisBatch, a.device.make);
    }
    const std::vector<double> chain_log_z = assemble(local, c0, chains, comm);
    std::vector<double> per_example(v.examples);
    std::vector<float> started_from(v.examples * nv);
    for (std::size_t e = 0; e < v.examples; ++e) {
        std::vector<double> neg(r.raise_chains);
        for (std::size_t m = 0; m < r.raise_chains; ++m) neg[m] = -chain_log_z[e * r.raise_chains + m];
        per_example[e] = -eval::log_mean_exp(neg);
        const float* row = data.row(example_of(e * r.raise_chains));
        std::copy(row, row + nv, started_from.begin() + e * nv);
    }
    double mean = 0, free_energy = 0;
    for (double x : per_example) mean += x;
    for (double f : eval::free_energies(a.params, started_from.data(), v.examples)) free_energy += f;
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

// The headline's log Z: exact when enumerated, else AIS's (RAISE is the conservative side).
void choose_log_z(EvalReport& report) {
    if (report.exact.done) {
        report.method = "exact";
        report.log_z = report.log_z_lower = report.log_z_upper = report.exact.log_z;
    } else if (report.ais.done()) {
        report.method = "ais";
        report.log_z = report.ais.log_z;
        report.log_z_lower = report.ais.lower;
        report.log_z_upper = report.ais.upper;
    }
}

// Signs that an estimate cannot be trusted.
std::vector<std::string> reliability_warnings(const EvalReport& report) {
    std::vector<std::string> warnings;
    const AisLogZ& ais = report.ais;
    const RaiseLogZ& raise = report.raise;
    const std::size_t runs = ais.log_weights.size();
    if (ais.done() && ais.pooled.ess < 0.1 * double(runs))
        warnings.push_back("AIS importance weights are degenerate: effective sample size " + fixed(ais.pooled.ess, 1) +
                           " of " + std::to_string(runs) +
                           " runs (< 10%); log Z is likely underestimated (the log-likelihood overestimated) — use "
                           "more runs (--runs, --seeds, ranks) or more --betas");
    if (ais.done() && !std::isnan(ais.seed_spread) && ais.seed_spread > 1.0)
        warnings.push_back("AIS estimates of independent seeds spread over " + fixed(ais.seed_spread, 2) +
                           " nats (> 1); the estimate is unreliable");
    if (ais.done() && report.exact.done && (report.exact.log_z < ais.lower || report.exact.log_z > ais.upper))
        warnings.push_back("the exact log Z " + fixed(report.exact.log_z, 4) + " lies outside AIS's +-3 sigma bounds [" +
                           fixed(ais.lower, 4) + ", " + fixed(ais.upper, 4) + "]");
    if (report.exact.done && raise.examples > 0 && raise.upper < report.exact.log_z)
        warnings.push_back("RAISE's log Z " + fixed(raise.log_z, 4) + " lies below the exact " +
                           fixed(report.exact.log_z, 4) + " beyond its bounds: its chains did not reach the model's "
                           "distribution, so its log-likelihood is not conservative here (more --betas)");
    if (ais.done() && !report.exact.done && !std::isnan(raise.log_z) && raise.log_z - ais.log_z > 1.0)
        warnings.push_back("AIS and RAISE differ by " + fixed(raise.log_z - ais.log_z, 2) +
                           " nats of log Z: the log-likelihood most likely lies between AIS's (optimistic) and "
                           "RAISE's (conservative) values");
    return warnings;
}

po::options_description eval_options() {
    po::options_description options("rbm eval options");
    auto text = [] { return po::value<std::string>(); };
    options.add_options()
        ("checkpoint", text(), "checkpoint file to evaluate (required)")
        ("data", text(), "examples to evaluate: IDX (raw or .gz) or FILE.h5:/dataset (required)")
        ("limit", text(), "evaluate only the first N examples (default 0: all)")
        ("binarize", text(), "none | threshold | stochastic (default stochastic: x > u, u uniform, as the "
                             "literature binarises MNIST)")
        ("binarize-threshold", text(), "threshold binarisation: x >= T is 1 (default 0.5)")
        ("binarize-seed", text(), "stochastic binarisation: seed of the Philox draws (default 0)")
        ("train-data", text(), "training examples, binarised alike, for the free-energy gap and the "
                               "training log-likelihood (optional)")
        ("train-limit", text(), "use only the first N training examples (default 0: all)")
        ("runs", text(), "AIS runs per seed (default 100; 0: no AIS)")
        ("seeds", text(), "independent AIS repetitions, for the spread across seeds (default 3)")
        ("seed", text(), "seed of the AIS and RAISE streams (default 123)")
        ("betas", text(), "annealing steps K (default 14500: 0..0.5 by 1e-3, 0.5..0.9 by 1e-4, 0.9..1 by "
                          "1e-5; another K keeps that shape, 500:4000:10000 of the steps)")
        ("raise-examples", text(), "RAISE (reverse AIS) from this many evenly spaced examples (default 100; 0: none)")
        ("raise-chains", text(), "RAISE chains per example (default 1)")
        ("exact", text(), "exact log Z by enumerating the smaller layer: auto | yes | no (default auto: when it "
                          "has at most 25 units and 2^units x other layer <= 2^32)")
        ("base-smoothing", text(), "alpha of the base rates p = (count + alpha) / (N + 2 alpha) (default 1)")
        ("json", "print one JSON object on stdout instead of text")
        ("threads", text(), "CPU threads per rank (default 0: every core for a single rank, one per rank under MPI)")
        ("device", text(), "auto | cpu | cuda: where AIS and RAISE anneal (default auto: a GPU when one is "
                           "visible; the other measures run on the CPU)")
        ("help,h", "this help");
    return options;
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
    const po::options_description options = eval_options();
    po::variables_map vm;
    parse_flags(args, options, vm);
    if (vm.count("help")) {
        std::cout << kEvalUsage << "\n" << options << std::endl;
        return 0;
    }
    EvalReport report;
    report.request = parse_request(vm);
    const EvalRequest& r = report.request;
    if (r.device == DeviceKind::cuda) require_cuda_device();  // before any work
    set_blas_threads(r.threads);
    const Communicator comm;
    const Progress progress{comm.is_root()};
    const auto t_start = Clock::now();

    const Checkpoint ckpt = read_checkpoint(r.checkpoint);
    const ParamBuffer& params = ckpt.params;
    report.checkpoint_step = ckpt.step;
    report.n_visible = params.shape.n_visible;
    report.n_hidden = params.shape.n_hidden;
    report.ranks = comm.size();
    const bool exact = wants_exact(r, params.shape);

    const SourceInfo info = probe_source(r.data);
    const std::size_t n = r.limit ? std::min(r.limit, info.n_rows) : info.n_rows;
    if (n == 0) fail(r.data, ": no examples to evaluate");
    if (info.n_cols != report.n_visible) fail(r.data, " has ", info.n_cols, " values per example, the model ", report.n_visible);
    const Dataset data = read_binary(r.data, {0, n}, r);

    report.data = measure_data(r, params, data, comm, progress);
    if (exact) report.exact = exact_log_z(params, comm, progress);
    const bool anneal = r.runs > 0 || r.raise_examples > 0;
    const eval::BaseModel base = base_rate_model(data, report.n_hidden, r.smoothing);
    const Annealing annealing{params, base, eval::beta_schedule(r.intervals),
                              anneal ? annealing_device(r.device, params, base, comm) : AnnealingDevice{{}, "cpu"}};
    report.annealing_device = annealing.device.description;
    progress("annealing on " + report.annealing_device);
    if (r.runs > 0) report.ais = forward_ais(r, annealing, comm, progress);
    if (r.raise_examples > 0) report.raise = reverse_ais(r, annealing, data, comm, progress);

    choose_log_z(report);
    report.warnings = reliability_warnings(report);
    report.wall_s = seconds_since(t_start);
    if (!comm.is_root()) return 0;
    for (const auto& w : report.warnings) std::cerr << "rbm eval: warning: " << w << std::endl;
    if (r.json)
        print_json(std::cout, report);
    else
        print_text(std::cout, report);
    return 0;
}

}  // namespace rbm::cli
