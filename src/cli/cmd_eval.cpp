// `rbm eval`: the measured quality of a checkpoint on a data set — the mean
// log-likelihood with log Z from AIS (and RAISE beside it, and the exact value when the
// smaller layer can be enumerated), the pseudo-likelihood over all bits, the
// reconstruction cross-entropy and the free-energy gap. AIS runs, RAISE chains,
// examples and enumerated states are split over MPI ranks; every chain draws from its
// own Philox stream, so the numbers do not depend on the number of ranks.
// Estimators and formulas: src/eval/ais.hpp, src/eval/metrics.hpp, docs/evaluation.md.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/eval_device.hpp"
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

// Evaluation binarises once: --binarize dynamic is a training option.
constexpr Choice<Binarization> kEvalBinarizations[] = {
    {"none", Binarization::none}, {"threshold", Binarization::threshold}, {"stochastic", Binarization::stochastic}};

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
    if (vm.count("train-limit")) r.train_limit = parse_count("--train-limit", text("train-limit"), origin, 0, UINT64_MAX);
    if (vm.count("binarize")) r.binarize.mode = parse_choice(text("binarize"), origin + ": --binarize", kEvalBinarizations);
    if (vm.count("binarize-threshold"))
        r.binarize.threshold = float(parse_real("--binarize-threshold", text("binarize-threshold"), origin, 0, 1));
    if (vm.count("binarize-seed"))
        r.binarize.seed = uint32_t(parse_count("--binarize-seed", text("binarize-seed"), origin, 0, UINT32_MAX));
    if (vm.count("runs")) r.runs = parse_count("--runs", text("runs"), origin, 0, 1u << 24);
    if (vm.count("seeds")) r.seeds = parse_count("--seeds", text("seeds"), origin, 1, 1000);
    if (vm.count("betas")) r.intervals = parse_count("--betas", text("betas"), origin, 3, 100000000);
    if (vm.count("raise-examples"))
        r.raise_examples = parse_count("--raise-examples", text("raise-examples"), origin, 0, 1u << 24);
    if (vm.count("raise-chains")) r.raise_chains = parse_count("--raise-chains", text("raise-chains"), origin, 1, 1u << 16);
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

// A JSON number; NaN and infinities (which JSON lacks) become null.
std::string num(double x) {
    if (!std::isfinite(x)) return "null";
    std::ostringstream o;
    o << std::setprecision(17) << x;
    return o.str();
}
std::string str(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
            continue;
        }
        out += c;
    }
    return out + "\"";
}
std::string fixed(double x, int digits = 3) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "+inf" : "-inf";
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << x;
    return o.str();
}

}  // namespace

int run_eval(const std::vector<std::string>& args) {
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
    po::variables_map vm;
    parse_flags(args, options, vm);
    if (vm.count("help")) {
        std::cout << kEvalUsage << "\n" << options << std::endl;
        return 0;
    }
    const EvalRequest r = parse_request(vm);
    if (r.device == DeviceKind::cuda) require_cuda_device();  // before any work
    set_blas_threads(r.threads);
    const Communicator comm;
    const bool root = comm.is_root();
    const auto t_start = Clock::now();
    auto progress = [&](const std::string& line) {
        if (root) std::cerr << "eval: " << line << std::endl;
    };
    std::vector<std::string> warnings;
    auto warn = [&](const std::string& w) {
        warnings.push_back(w);
        if (root) std::cerr << "rbm eval: warning: " << w << std::endl;
    };

    const Checkpoint ckpt = read_checkpoint(r.checkpoint);
    const ParamBuffer& params = ckpt.params;
    const RbmShape shape = params.shape;
    const std::size_t nv = shape.n_visible, nh = shape.n_hidden;

    // --- the evaluated examples: every rank holds them all (RAISE starts from any of them).
    const SourceInfo info = probe_source(r.data);
    const std::size_t n = r.limit ? std::min(r.limit, info.n_rows) : info.n_rows;
    if (n == 0) fail(r.data, ": no examples to evaluate");
    if (info.n_cols != nv) fail(r.data, " has ", info.n_cols, " values per example, the model ", nv);
    const Dataset data = read_binary(r.data, {0, n}, r);

    // --- data measures, examples split over ranks.
    auto t0 = Clock::now();
    const auto [d0, d1] = share(n, comm);
    eval::DataSums local = d1 > d0 ? eval::data_sums(params, data.row(d0), d1 - d0, true) : eval::DataSums{};
    double sums[4] = {local.free_energy, local.pseudo_likelihood, local.reconstruction_xent, local.examples};
    comm.allreduce_sum(sums, 4);
    const double mean_fe = sums[0] / double(n), mean_pl = sums[1] / double(n), mean_xent = sums[2] / double(n);
    const double data_wall = seconds_since(t0);
    progress("data measures on " + std::to_string(n) + " examples in " + fixed(data_wall, 1) + " s");

    double mean_fe_train = std::nan("");
    std::size_t n_train = 0;
    if (!r.train_data.empty()) {
        const SourceInfo tinfo = probe_source(r.train_data);
        if (tinfo.n_cols != nv) fail(r.train_data, " has ", tinfo.n_cols, " values per example, the model ", nv);
        n_train = r.train_limit ? std::min(r.train_limit, tinfo.n_rows) : tinfo.n_rows;
        if (n_train == 0) fail(r.train_data, ": no examples");
        const auto [t_0, t_1] = share(n_train, comm);
        double tsum[1] = {0};
        if (t_1 > t_0) {
            const Dataset train = read_binary(r.train_data, {t_0, t_1}, r);
            for (double f : eval::free_energies(params, train.values.data(), train.n_rows)) tsum[0] += f;
        }
        comm.allreduce_sum(tsum, 1);
        mean_fe_train = tsum[0] / double(n_train);
    }

    // --- exact log Z, states split over ranks.
    const std::size_t units = eval::enumerated_units(shape), others = std::max(nv, nh);
    const bool exact_fits = units <= 25 && std::ldexp(double(others), int(units)) <= std::ldexp(1.0, 32);
    if (r.exact == "yes" && units > 26)
        fail("--exact yes: the smaller layer has ", units, " units; enumeration stops at 26");
    const bool do_exact = r.exact == "yes" || (r.exact == "auto" && exact_fits);
    double log_z_exact = std::nan("");
    double exact_wall = 0;
    if (do_exact) {
        t0 = Clock::now();
        // The states are cut into blocks before the blocks are dealt to ranks (as the AIS
        // batches are) and each block's Gray walk starts afresh, so the sums round the same
        // way, and log Z is bitwise the same, for any rank count.
        const uint64_t states = uint64_t(1) << units;
        const std::size_t blocks = std::size_t(std::min<uint64_t>(kExactBlocks, states));
        const auto [k0, k1] = share(blocks, comm);
        std::vector<double> local;
        for (std::size_t k = k0; k < k1; ++k)
            local.push_back(eval::log_partition_partial(params, states * k / blocks, states * (k + 1) / blocks));
        const std::vector<double> parts = assemble(local, k0, blocks, comm);
        double top = -std::numeric_limits<double>::infinity(), s = 0;
        for (double x : parts) top = std::max(top, x);
        for (double x : parts) s += std::exp(x - top);
        log_z_exact = top + std::log(s);
        exact_wall = seconds_since(t0);
        progress("exact log Z " + fixed(log_z_exact, 4) + " (2^" + std::to_string(units) + " states) in " +
                 fixed(exact_wall, 1) + " s");
    }

    // --- the base-rate model from the evaluated examples.
    std::vector<double> column_sums(nv, 0.0);
    for (std::size_t k = 0; k < n; ++k)
        for (std::size_t i = 0; i < nv; ++i) column_sums[i] += data.row(k)[i];
    const eval::BaseModel base = eval::base_rate_model(column_sums, n, nh, r.smoothing);
    const std::vector<double> betas = eval::beta_schedule(r.intervals);
    const AnnealingDevice annealer =
        r.runs > 0 || r.raise_examples > 0 ? annealing_device(r.device, params, base, comm) : AnnealingDevice{{}, "cpu"};
    progress("annealing on " + annealer.description);

    // --- forward AIS: all seeds' runs form one list of chains (seed s, run k at s * runs + k),
    // cut into batches of eval::kAisBatch and dealt to ranks batch by batch, so that every
    // batch (and so every weight, bitwise) is the same on any number of ranks.
    std::vector<eval::WeightSummary> per_seed;
    std::vector<double> pooled;
    double ais_wall = 0;
    if (r.runs > 0) {
        t0 = Clock::now();
        const std::size_t total = r.runs * r.seeds;
        const auto [b0, b1] = share((total + eval::kAisBatch - 1) / eval::kAisBatch, comm);
        const std::size_t g0 = std::min(total, b0 * eval::kAisBatch), g1 = std::min(total, b1 * eval::kAisBatch);
        std::vector<eval::ChainId> ids;
        for (std::size_t g = g0; g < g1; ++g) ids.push_back({uint32_t(g / r.runs), uint32_t(g % r.runs)});
        std::vector<double> local_w;
        if (!ids.empty())
            local_w = eval::forward_ais_log_weights(params, base, betas, r.seed, ids, eval::kAisBatch, annealer.make);
        pooled = assemble(local_w, g0, total, comm);
        ais_wall = seconds_since(t0);
        for (std::size_t s = 0; s < r.seeds; ++s)
            per_seed.push_back(eval::summarize_log_weights(std::vector<double>(
                pooled.begin() + std::ptrdiff_t(s * r.runs), pooled.begin() + std::ptrdiff_t((s + 1) * r.runs))));
        std::string line = "AIS, " + std::to_string(r.seeds) + " seed(s) x " + std::to_string(r.runs) + " runs x " +
                           std::to_string(r.intervals) + " steps in " + fixed(ais_wall, 1) + " s; log Z per seed:";
        for (const auto& ps : per_seed) line += " " + fixed(base.log_z + ps.log_mean, 3) + " (ESS " + fixed(ps.ess, 1) + ")";
        progress(line);
    }
    const bool have_ais = !pooled.empty();
    eval::WeightSummary ais{};
    double log_z_ais = std::nan(""), ais_lower = std::nan(""), ais_upper = std::nan(""), spread = std::nan("");
    if (have_ais) {
        ais = eval::summarize_log_weights(pooled);
        log_z_ais = base.log_z + ais.log_mean;
        ais_lower = base.log_z + ais.log_lower;
        ais_upper = base.log_z + ais.log_upper;
        if (per_seed.size() > 1) {
            double lo = INFINITY, hi = -INFINITY;
            for (const auto& ps : per_seed) {
                lo = std::min(lo, ps.log_mean);
                hi = std::max(hi, ps.log_mean);
            }
            spread = hi - lo;
        }
    }

    // --- RAISE from evenly spaced examples, chains split over ranks.
    const std::size_t n_raise = std::min(r.raise_examples, n);
    double log_z_rev = std::nan(""), rev_lower = std::nan(""), rev_upper = std::nan(""), rev_sd = std::nan("");
    double raise_wall = 0, raise_subset_fe = std::nan("");
    if (n_raise > 0) {
        t0 = Clock::now();
        const std::size_t chains = n_raise * r.raise_chains;
        auto example_of = [&](std::size_t c) { return (c / r.raise_chains) * n / n_raise; };
        const auto [b0, b1] = share((chains + eval::kAisBatch - 1) / eval::kAisBatch, comm);
        const std::size_t c0 = std::min(chains, b0 * eval::kAisBatch), c1 = std::min(chains, b1 * eval::kAisBatch);
        std::vector<double> local_z;
        if (c1 > c0) {
            std::vector<float> starts((c1 - c0) * nv);
            for (std::size_t c = c0; c < c1; ++c)
                std::copy(data.row(example_of(c)), data.row(example_of(c)) + nv, starts.begin() + (c - c0) * nv);
            local_z = eval::reverse_ais_log_z(params, base, betas, r.seed, eval::chain_ids(0, c0, c1 - c0),
                                              starts.data(), eval::kAisBatch, annealer.make);
        }
        const std::vector<double> all_z = assemble(local_z, c0, chains, comm);
        // Per example: p̂(v) = f(v) mean_m exp(-log Ẑ_m), i.e. log Ẑ(v) = -log mean_m exp(-log Ẑ_m).
        std::vector<double> lz(n_raise), fe_subset(n_raise);
        std::vector<float> subset_rows(n_raise * nv);
        for (std::size_t e = 0; e < n_raise; ++e) {
            std::vector<double> neg(r.raise_chains);
            for (std::size_t m = 0; m < r.raise_chains; ++m) neg[m] = -all_z[e * r.raise_chains + m];
            lz[e] = -eval::log_mean_exp(neg);
            const float* row = data.row(example_of(e * r.raise_chains));
            std::copy(row, row + nv, subset_rows.begin() + e * nv);
        }
        fe_subset = eval::free_energies(params, subset_rows.data(), n_raise);
        double mean = 0, fe = 0;
        for (std::size_t e = 0; e < n_raise; ++e) {
            mean += lz[e];
            fe += fe_subset[e];
        }
        mean /= double(n_raise);
        raise_subset_fe = fe / double(n_raise);
        double ss = 0;
        for (double x : lz) ss += (x - mean) * (x - mean);
        rev_sd = n_raise > 1 ? std::sqrt(ss / double(n_raise - 1)) : std::nan("");
        const double se = n_raise > 1 ? rev_sd / std::sqrt(double(n_raise)) : INFINITY;
        log_z_rev = mean;
        rev_lower = mean - 3 * se;
        rev_upper = mean + 3 * se;
        raise_wall = seconds_since(t0);
        progress("RAISE from " + std::to_string(n_raise) + " examples: log Z " + fixed(log_z_rev, 4) + ", " +
                 fixed(raise_wall, 1) + " s");
    }

    // --- which log Z the headline uses.
    std::string method = "none";
    double log_z = std::nan(""), log_z_lower = std::nan(""), log_z_upper = std::nan("");
    if (do_exact) {
        method = "exact";
        log_z = log_z_lower = log_z_upper = log_z_exact;
    } else if (have_ais) {
        method = "ais";
        log_z = log_z_ais;
        log_z_lower = ais_lower;
        log_z_upper = ais_upper;
    }
    const double mean_ll = -mean_fe - log_z;

    if (have_ais) {
        const double runs_total = double(pooled.size());
        if (ais.ess < 0.1 * runs_total)
            warn("AIS importance weights are degenerate: effective sample size " + fixed(ais.ess, 1) + " of " +
                 std::to_string(pooled.size()) + " runs (< 10%); log Z is likely underestimated (the "
                 "log-likelihood overestimated) — use more runs (--runs, --seeds, ranks) or more --betas");
        if (!std::isnan(spread) && spread > 1.0)
            warn("AIS estimates of independent seeds spread over " + fixed(spread, 2) +
                 " nats (> 1); the estimate is unreliable");
        if (do_exact && (log_z_exact < ais_lower || log_z_exact > ais_upper))
            warn("the exact log Z " + fixed(log_z_exact, 4) + " lies outside AIS's +-3 sigma bounds [" +
                 fixed(ais_lower, 4) + ", " + fixed(ais_upper, 4) + "]");
        if (!std::isnan(log_z_rev) && log_z_rev - log_z_ais > 1.0)
            warn("AIS and RAISE differ by " + fixed(log_z_rev - log_z_ais, 2) +
                 " nats of log Z: the log-likelihood most likely lies between AIS's (optimistic) and "
                 "RAISE's (conservative) values");
    }
    const double total_wall = seconds_since(t_start);
    if (!root) return 0;

    const double ll_ais = -mean_fe - log_z_ais;
    const double ll_rev = -mean_fe - log_z_rev;
    if (r.json) {
        std::ostringstream j;
        j << "{\n";
        j << "  \"checkpoint\": " << str(r.checkpoint) << ",\n";
        j << "  \"checkpoint_step\": " << ckpt.step << ",\n";
        j << "  \"data\": " << str(r.data) << ",\n";
        j << "  \"n_visible\": " << nv << ",\n  \"n_hidden\": " << nh << ",\n";
        j << "  \"n_examples\": " << n << ",\n";
        j << "  \"binarize\": " << str(choice_name(r.binarize.mode, kEvalBinarizations)) << ",\n";
        j << "  \"binarize_seed\": " << r.binarize.seed << ",\n";
        j << "  \"ranks\": " << comm.size() << ",\n";
        j << "  \"annealing_device\": " << str(annealer.description) << ",\n";
        j << "  \"method\": " << str(method) << ",\n";
        j << "  \"log_z\": " << num(log_z) << ",\n";
        j << "  \"log_z_lower\": " << num(log_z_lower) << ",\n";
        j << "  \"log_z_upper\": " << num(log_z_upper) << ",\n";
        j << "  \"mean_log_likelihood\": " << num(mean_ll) << ",\n";
        j << "  \"mean_log_likelihood_lower\": " << num(-mean_fe - log_z_upper) << ",\n";
        j << "  \"mean_log_likelihood_upper\": " << num(-mean_fe - log_z_lower) << ",\n";
        j << "  \"ess\": " << (have_ais ? num(ais.ess) : "null") << ",\n";
        j << "  \"mean_free_energy\": " << num(mean_fe) << ",\n";
        j << "  \"exact\": ";
        if (do_exact)
            j << "{\"log_z\": " << num(log_z_exact) << ", \"mean_log_likelihood\": " << num(-mean_fe - log_z_exact)
              << ", \"enumerated_units\": " << units << ", \"wall_s\": " << num(exact_wall) << "},\n";
        else
            j << "null,\n";
        j << "  \"ais\": ";
        if (have_ais) {
            j << "{\n    \"log_z\": " << num(log_z_ais) << ",\n    \"log_z_lower\": " << num(ais_lower)
              << ",\n    \"log_z_upper\": " << num(ais_upper) << ",\n    \"mean_log_likelihood\": " << num(ll_ais)
              << ",\n    \"ess\": " << num(ais.ess) << ",\n    \"ess_fraction\": " << num(ais.ess / double(pooled.size()))
              << ",\n    \"runs_per_seed\": " << r.runs << ",\n    \"seeds\": " << r.seeds
              << ",\n    \"runs_total\": " << pooled.size() << ",\n    \"seed\": " << r.seed
              << ",\n    \"intervals\": " << r.intervals << ",\n    \"seed_spread\": " << num(spread)
              << ",\n    \"log_z_base\": " << num(base.log_z) << ",\n    \"base_smoothing\": " << num(r.smoothing)
              << ",\n    \"wall_s\": " << num(ais_wall) << ",\n    \"per_seed\": [";
            for (std::size_t s = 0; s < per_seed.size(); ++s) {
                const auto& ps = per_seed[s];
                j << (s ? ", " : "") << "{\"seed_index\": " << s << ", \"log_z\": " << num(base.log_z + ps.log_mean)
                  << ", \"log_z_lower\": " << num(base.log_z + ps.log_lower)
                  << ", \"log_z_upper\": " << num(base.log_z + ps.log_upper) << ", \"ess\": " << num(ps.ess) << "}";
            }
            j << "]\n  },\n";
        } else {
            j << "null,\n";
        }
        j << "  \"reverse\": ";
        if (n_raise > 0) {
            j << "{\"method\": \"raise\", \"examples\": " << n_raise << ", \"chains_per_example\": " << r.raise_chains
              << ", \"log_z\": " << num(log_z_rev) << ", \"log_z_lower\": " << num(rev_lower)
              << ", \"log_z_upper\": " << num(rev_upper) << ", \"log_z_sd_across_examples\": " << num(rev_sd)
              << ", \"mean_log_likelihood\": " << num(ll_rev)
              << ", \"mean_log_likelihood_lower\": " << num(-mean_fe - rev_upper)
              << ", \"mean_log_likelihood_upper\": " << num(-mean_fe - rev_lower)
              << ", \"subset_mean_log_likelihood\": " << num(-raise_subset_fe - log_z_rev)
              << ", \"subset_mean_log_likelihood_ais\": " << num(-raise_subset_fe - log_z_ais)
              << ", \"wall_s\": " << num(raise_wall) << "},\n";
        } else {
            j << "null,\n";
        }
        j << "  \"pseudo_likelihood\": {\"per_example\": " << num(mean_pl) << ", \"per_pixel\": "
          << num(mean_pl / double(nv)) << ", \"bits\": \"all\"},\n";
        j << "  \"reconstruction_xent\": " << num(mean_xent) << ",\n";
        j << "  \"free_energy\": {\"data\": " << num(mean_fe) << ", \"train\": " << num(mean_fe_train)
          << ", \"gap\": " << num(mean_fe - mean_fe_train) << ", \"train_examples\": " << n_train << "},\n";
        j << "  \"mean_log_likelihood_train\": " << num(-mean_fe_train - log_z) << ",\n";
        j << "  \"warnings\": [";
        for (std::size_t w = 0; w < warnings.size(); ++w) j << (w ? ", " : "") << str(warnings[w]);
        j << "],\n";
        j << "  \"wall_s\": " << num(total_wall) << "\n}\n";
        std::cout << j.str() << std::flush;
        return 0;
    }

    std::ostream& o = std::cout;
    o << "rbm eval: " << r.checkpoint << " (" << nv << " x " << nh << ", step " << ckpt.step << ")\n";
    o << "data: " << r.data << ", " << n << " examples, binarised " << choice_name(r.binarize.mode, kEvalBinarizations);
    if (r.binarize.mode == Binarization::stochastic) o << " (seed " << r.binarize.seed << ")";
    o << ", " << comm.size() << " rank(s)\n\n";
    if (have_ais) {
        o << "log Z, AIS        " << fixed(log_z_ais, 3) << "  [" << fixed(ais_lower, 3) << ", " << fixed(ais_upper, 3)
          << "] (+-3 sigma)  ESS " << fixed(ais.ess, 1) << " of " << pooled.size() << " runs (" << r.seeds
          << " seed(s) x " << r.runs << ", " << r.intervals << " steps)\n";
        if (per_seed.size() > 1) {
            o << "  per seed         ";
            for (const auto& ps : per_seed) o << fixed(base.log_z + ps.log_mean, 3) << " (ESS " << fixed(ps.ess, 1) << ")  ";
            o << "spread " << fixed(spread, 3) << "\n";
        }
    }
    if (n_raise > 0)
        o << "log Z, RAISE      " << fixed(log_z_rev, 3) << "  [" << fixed(rev_lower, 3) << ", " << fixed(rev_upper, 3)
          << "] (+-3 s.e. over " << n_raise << " examples; conservative: an upper estimate)\n";
    if (do_exact) o << "log Z, exact      " << fixed(log_z_exact, 3) << "  (2^" << units << " states enumerated)\n";
    o << "\nmean log-likelihood per example (nats), method " << method << ": " << fixed(mean_ll, 3);
    if (method == "ais") o << "  [" << fixed(-mean_fe - log_z_upper, 3) << ", " << fixed(-mean_fe - log_z_lower, 3) << "]";
    o << "\n";
    if (have_ais && method != "ais") o << "  with AIS's log Z   " << fixed(ll_ais, 3) << "\n";
    if (n_raise > 0)
        o << "  with RAISE's log Z " << fixed(ll_rev, 3) << "  (conservative)\n";
    if (!std::isnan(mean_fe_train))
        o << "  on the training data " << fixed(-mean_fe_train - log_z, 3) << " (" << n_train << " examples)\n";
    o << "pseudo-likelihood (all " << nv << " bits): " << fixed(mean_pl, 3) << " per example, " << fixed(mean_pl / double(nv), 5)
      << " per pixel\n";
    o << "reconstruction cross-entropy: " << fixed(mean_xent, 3) << " per example\n";
    o << "mean free energy: " << fixed(mean_fe, 3);
    if (!std::isnan(mean_fe_train))
        o << "; training " << fixed(mean_fe_train, 3) << "; gap (data - training) " << fixed(mean_fe - mean_fe_train, 3);
    o << "\n";
    for (const auto& w : warnings) o << "warning: " << w << "\n";
    o << "wall time " << fixed(total_wall, 1) << " s (AIS " << fixed(ais_wall, 1) << " s, RAISE " << fixed(raise_wall, 1)
      << " s, exact " << fixed(exact_wall, 1) << " s, data " << fixed(data_wall, 1) << " s)\n";
    return 0;
}

}  // namespace rbm::cli
