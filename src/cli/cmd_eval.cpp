// `rbm eval`: the measured quality of a checkpoint on a data set — the mean
// log-likelihood with log Z from AIS (and RAISE beside it, and the exact value when the
// smaller layer can be enumerated), the pseudo-likelihood over all bits, the
// reconstruction cross-entropy and the free-energy gap. AIS runs, RAISE chains,
// examples and enumerated states are split over MPI ranks; every chain draws from its
// own Philox stream, so the numbers do not depend on the number of ranks.
// The estimates over ranks: src/eval/estimates.hpp; estimators and formulas:
// src/eval/ais.hpp, src/eval/metrics.hpp, docs/evaluation.md. This file reads the
// files, deals the examples to ranks for the means, and reports.
#include <chrono>
#include <cmath>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/eval_device.hpp"
#include "cli/eval_report.hpp"
#include "cli/options.hpp"
#include "dist/communicator.hpp"
#include "engine/engine_factory.hpp"
#include "eval/ais.hpp"
#include "eval/estimates.hpp"
#include "eval/metrics.hpp"
#include "io/checkpoint.hpp"
#include "io/dataset.hpp"
#include "util/check.hpp"
#include "util/choices.hpp"
#include "util/clock.hpp"

namespace rbm::cli {
namespace {

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
    if (!vm.count("data")) fail("--data is required (the examples to evaluate: IDX or FILE.h5:/dataset)");
    r.checkpoint = checkpoint_option(vm);
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

Dataset read_binary(const std::string& spec, RowRange range, const EvalRequest& r) {
    Dataset d = read_rows(spec, range);
    binarize(d, r.binarize);
    if (!is_binary(d))
        fail(spec, ": the log-likelihood of a Bernoulli RBM needs binary data; these values are not 0/1 "
             "(use --binarize stochastic or threshold)");
    return d;
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
    const auto [d0, d1] = eval::share(data.n_rows, comm);
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
        const auto [t0_row, t1_row] = eval::share(m.train_examples, comm);
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
        ("checkpoint", text(), "checkpoint file to evaluate, or a run directory for its newest (required)")
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
    comm.broadcast(report.request.checkpoint);  // rank 0's choice of a run directory's newest, on every rank
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
    if (exact) report.exact = eval::exact_log_z(params, comm, progress);
    const bool anneal = r.runs > 0 || r.raise_examples > 0;
    const eval::BaseModel base = eval::base_rate_model(data, report.n_hidden, r.smoothing);
    const AnnealingDevice device = anneal ? annealing_device(r.device, params, base, comm) : AnnealingDevice{{}, "cpu"};
    const eval::Annealing annealing{params, base, eval::beta_schedule(r.intervals), device.make};
    report.annealing_device = device.description;
    progress("annealing on " + report.annealing_device);
    if (r.runs > 0) report.ais = eval::forward_ais({r.runs, r.seeds, r.seed}, annealing, comm, progress);
    if (r.raise_examples > 0)
        report.raise = eval::reverse_ais(r.raise_examples, r.raise_chains, r.seed, annealing, data, comm, progress);

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
