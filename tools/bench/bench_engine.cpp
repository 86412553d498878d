// rbm_bench: the CPU engine's training step against its own matrix products.
//
// Times `steps` training steps exactly as `rbm train` runs them on one rank
// (compute_gradient + apply_update, monitoring costs every step unless --no-measure),
// and, in the same run and alternating with them, the same sequence of sgemm calls with
// the same shapes alone (recorded from a real step through cpu::record_gemms), so the
// ratio of the two is the share of the step spent outside OpenBLAS. The products are
// recorded with every Gibbs product through sgemm: once samples are sparse the step
// itself skips most of them (row sums instead) and can take less than its products. The cpu/wall
// columns (process CPU time over wall time, step and products) are about the thread
// count when nothing else ran; less means other processes took the cores. Threads are set
// the way `rbm train --threads N` sets them. The step is also timed with every Gibbs
// product through sgemm (cpu::use_sparse_samples(false)), alternating: once a model has
// trained, its sparse samples make most of them row sums (--start CHECKPOINT begins from
// such a model and its chains). Prints a table and one RESULT line for tools/bench_cpu.sh.
//
//   rbm_bench [--data FILE | --data random] [--hidden 500] [--batch 20] [--chains B]
//             [--k 15] [--method pcd|cd] [--lr 0.1] [--threads 1] [--steps 150]
//             [--repeats 3] [--limit 10000] [--no-measure] [--start CHECKPOINT]
//             [--steps-only]   (only the training steps, for a profiler)
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <cblas.h>

#include "cli/commands.hpp"
#include "engine/cpu_kernels.hpp"
#include "engine/engine.hpp"
#include "io/checkpoint.hpp"
#include "io/dataset.hpp"
#include "train/config.hpp"
#include "model/init.hpp"
#include "random/shuffle.hpp"
#include "util/check.hpp"

using namespace rbm;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string data = "data/mnist/train-images-idx3-ubyte";
    std::size_t hidden = 500, batch = 20, chains = 0, limit = 10000;
    int k = 15, threads = 1, steps = 150, repeats = 3;
    Method method = Method::pcd;
    std::size_t temperatures = 5;  // pt
    float beta_min = 0.8f;         // pt
    float lr = 0.1f;
    bool measure = true;
    bool steps_only = false;  // --steps-only: train steps * repeats and nothing else (for profilers)
    std::string start;        // --start: a checkpoint whose parameters and chains the steps begin from
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "rbm_bench: " << why << "\n"
              << "usage: rbm_bench [--data FILE|random] [--hidden N] [--batch N] [--chains N] [--k N]\n"
              << "                 [--method pcd|cd|pt] [--temperatures M] [--beta-min B] [--lr X] [--threads N]\n"
              << "                 [--steps N] [--repeats N]\n"
              << "                 [--limit N] [--no-measure] [--start CHECKPOINT] [--steps-only]\n";
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(a + " needs a value");
            return argv[++i];
        };
        auto number = [&]() -> long {
            const std::string v = value();
            char* end = nullptr;
            const long n = std::strtol(v.c_str(), &end, 10);
            if (!end || *end || n < 0) usage(a + " " + v + ": not a count");
            return n;
        };
        if (a == "--data") o.data = value();
        else if (a == "--hidden") o.hidden = std::size_t(number());
        else if (a == "--batch") o.batch = std::size_t(number());
        else if (a == "--chains") o.chains = std::size_t(number());
        else if (a == "--k") o.k = int(number());
        else if (a == "--threads") o.threads = int(number());
        else if (a == "--steps") o.steps = int(number());
        else if (a == "--repeats") o.repeats = int(number());
        else if (a == "--limit") o.limit = std::size_t(number());
        else if (a == "--lr") o.lr = std::stof(value());
        else if (a == "--temperatures") o.temperatures = std::size_t(number());
        else if (a == "--beta-min") o.beta_min = std::stof(value());
        else if (a == "--no-measure") o.measure = false;
        else if (a == "--steps-only") o.steps_only = true;
        else if (a == "--start") o.start = value();
        else if (a == "--method") {
            const std::string m = value();
            if (m == "pcd") o.method = Method::pcd;
            else if (m == "cd") o.method = Method::cd;
            else if (m == "pt") o.method = Method::pt;
            else usage("--method " + m + ": pcd, cd or pt");
        } else if (a == "--help" || a == "-h") usage("the CPU engine's step against its products alone");
        else usage("unknown argument " + a);
    }
    if (!o.chains) o.chains = o.batch;
    if (!o.batch || !o.hidden || !o.steps || !o.repeats || o.k < 1) usage("counts must be positive");
    if (o.temperatures < 2 || !(o.beta_min >= 0 && o.beta_min < 1)) usage("pt needs 2 or more temperatures, beta-min in [0, 1)");
    return o;
}

Dataset load(const Options& o, std::string& what) {
    if (o.data != "random" && std::filesystem::exists(o.data)) {
        Dataset d = read_rows(o.data, {0, o.limit});
        what = o.data + " (" + std::to_string(d.n_rows) + " rows, " + (is_binary(d) ? "binary" : "real-valued") + ")";
        return d;
    }
    // No MNIST: random real-valued rows with MNIST's shape and roughly its sparsity.
    Dataset d;
    d.source = "random";
    d.n_rows = std::max<std::size_t>(o.limit, 2 * o.batch);
    d.n_cols = 784;
    d.values.resize(d.n_rows * d.n_cols);
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& x : d.values) x = u(gen) < 0.8f ? 0.0f : u(gen);
    what = "random (" + std::to_string(d.n_rows) + " rows of 784, 80% zeros" +
           (o.data == "random" ? "" : "; " + o.data + " not found") + ")";
    return d;
}

// CPU time of the whole process (every thread), in ms: beside the wall time it shows
// whether a timing was disturbed (other processes take the cores: cpu < threads x wall).
double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) * 1e3 + double(t.tv_nsec) * 1e-6;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    cli::set_blas_threads(o.threads);  // as rbm train --threads N (0: its default)
    std::string what;
    const Dataset data = load(o, what);
    RBM_CHECK(data.n_rows >= o.batch, "fewer rows than one batch");
    const RbmShape shape{data.n_cols, o.hidden};

    auto engine = make_cpu_engine(shape);
    engine->set_params(initial_params(shape, 123));
    engine->set_velocity(ParamBuffer(shape));
    std::vector<uint8_t> start_chains(o.chains * o.hidden, 0);
    if (!o.start.empty()) {
        const Checkpoint c = read_checkpoint(o.start);
        RBM_CHECK(c.params.shape == shape, o.start << ": a " << c.params.shape.n_visible << "x"
                                                   << c.params.shape.n_hidden << " model, not " << shape.n_visible
                                                   << "x" << shape.n_hidden);
        engine->set_params(c.params);
        if (c.chains_hidden.size() >= start_chains.size())
            std::copy(c.chains_hidden.begin(), c.chains_hidden.begin() + long(start_chains.size()), start_chains.begin());
    }
    engine->set_training_shard(data);
    StepSettings settings;
    settings.method = o.method;
    settings.k = o.k;
    settings.batch = o.batch;
    settings.chains = o.chains;
    settings.seed = 123;
    if (keeps_chains(o.method)) engine->set_chains(start_chains);
    if (o.method == Method::pt) {  // the ladder rbm train's --temperatures --beta-min make; tempered chains at h = 0
        TrainConfig ladder;
        ladder.method = Method::pt;
        ladder.temperatures = o.temperatures;
        ladder.beta_min = o.beta_min;
        settings.betas = ladder.tempered_betas();
        engine->set_tempered_chains(std::vector<uint8_t>(settings.betas.size() * start_chains.size(), 0));
    }
    const UpdateRule rule{o.lr, 0.0f, 0.0f};
    const std::vector<uint32_t> order = epoch_order(data.n_rows, 123, 0, 0);
    const std::size_t steps_per_epoch = data.n_rows / o.batch;
    uint64_t step = 0;
    auto train_steps = [&](int n) {
        for (int s = 0; s < n; ++s, ++step) {
            StepSpec spec;
            spec.step = step;
            spec.pl_bit = std::size_t(step % shape.n_visible);
            spec.measure = o.measure;
            engine->compute_gradient(order.data() + (step % steps_per_epoch) * o.batch, settings, spec);
            engine->apply_update(rule, 1.0f);
        }
    };

    if (o.steps_only) {
        const auto t0 = Clock::now();
        train_steps(o.steps * o.repeats);
        std::printf("%d steps: %.3f ms per step\n", o.steps * o.repeats,
                    std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / (o.steps * o.repeats));
        return 0;
    }

    // The products of one step, recorded as the engine computes them (blocks of columns;
    // with several loop threads, each thread's blocks) and as plain whole products, one
    // sgemm call each, as a user of OpenBLAS would call it. Recorded with every product
    // through sgemm: the step's products, whether or not its sparse samples skip them.
    train_steps(5);
    const int threads = cpu::threads();
    std::vector<cpu::GemmShape> split, whole;
    const bool sparse = cpu::use_sparse_samples(false);
    cpu::record_gemms(&split);
    train_steps(1);
    cpu::record_gemms(nullptr);
    {
        cpu::set_threads(1);
        const bool blocks = cpu::use_gemm_blocks(false);
        cpu::record_gemms(&whole);
        train_steps(1);
        cpu::record_gemms(nullptr);
        cpu::use_gemm_blocks(blocks);
        cpu::set_threads(threads);
    }
    cpu::use_sparse_samples(sparse);
    double flops = 0;
    for (const auto& g : whole) flops += g.flops();
    // A replay computes each product again on the very operands and outputs the step used
    // (W, the step's activations, its scratch outputs, all rewritten by every step), so it
    // reads the same memory in the same order.
    auto replay = [&](const cpu::GemmShape& g) {
        cpu::gemm(g.trans_a, g.trans_b, g.m, g.n, g.k, g.a, g.lda, g.b, g.ldb, g.c, g.ldc);
    };
    // Products alone: (1) as the engine computes them, each loop thread its blocks with
    // one-thread OpenBLAS, without the barriers; (2) whole, one call each through
    // OpenBLAS with as many threads (timed after the others: OpenBLAS's threads keep
    // spinning a while after a call and would slow what follows).
    const int blas_threads = openblas_get_num_threads();
    auto split_steps = [&](int n) {
        cpu::parallel([&](int t, int) {
            for (int s = 0; s < n; ++s)
                for (const auto& g : split)
                    if (g.thread == t) replay(g);
        });
    };
    auto whole_steps = [&](int n) {
        openblas_set_num_threads(threads);
        for (int s = 0; s < n; ++s)
            for (const auto& g : whole) replay(g);
        openblas_set_num_threads(blas_threads);
    };
    split_steps(3);
    if (threads > 1) whole_steps(3);

    const std::size_t chains = keeps_chains(o.method) ? o.chains : o.batch;
    const std::string method = o.method == Method::pt ? "PT(" + std::to_string(o.temperatures) + " temperatures to " +
                                                            std::to_string(o.beta_min).substr(0, 4) + ")"
                                                      : o.method == Method::pcd ? "PCD" : "CD";
    std::printf("rbm_bench: %zux%zu RBM, %s-%d, batch %zu, %zu chains, lr %g, %d thread(s), kernels %s\n",
                shape.n_visible, shape.n_hidden, method.c_str(), o.k, o.batch, chains, double(o.lr), o.threads,
                cpu::kernel_isa());
    std::printf("  data: %s; monitoring costs %s\n", what.c_str(),
                o.measure ? "every step (as rbm train)" : "off");
    std::printf("  model: %s\n", o.start.empty() ? "the tutorial's initialisation" : ("from " + o.start).c_str());
    std::printf("  products per step: %zu sgemm, %.1f MFLOP; %d steps per timing, %d repeats\n", whole.size(),
                flops * 1e-6, o.steps, o.repeats);
    std::printf("  threads: %d engine loop thread(s), OpenBLAS %d thread(s) inside the step\n", threads, blas_threads);
    std::printf("  products alone: as the engine makes them (%zu sgemm calls), then as %zu whole calls through\n"
                "  %d-thread OpenBLAS; the step is compared with the faster\n",
                split.size(), whole.size(), threads);
    std::printf("  %-8s %10s %12s %8s %14s\n", "repeat", "step ms", "products ms", "ratio", "cpu/wall s, p");
    std::vector<double> step_ms, split_ms, whole_ms, dense_ms, paired_ms;
    auto timed = [&](auto&& fn, double& wall, double& cpu_share) {
        const auto t0 = Clock::now();
        const double c0 = process_cpu_ms();
        fn();
        wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.steps;
        cpu_share = (process_cpu_ms() - c0) / o.steps / wall;
    };
    for (int r = 0; r < o.repeats; ++r) {
        double ts, cs, tp, cp;
        timed([&] { train_steps(o.steps); }, ts, cs);
        timed([&] { split_steps(o.steps); }, tp, cp);
        step_ms.push_back(ts);
        split_ms.push_back(tp);
        std::printf("  %-8d %10.3f %12.3f %8.3f %7.2f %6.2f\n", r + 1, ts, tp, ts / tp, cs, cp);
    }
    for (int r = 0; r < o.repeats; ++r) {  // the same steps, every Gibbs product through sgemm, alternating
        double ts, cs, td, cd;
        cpu::use_sparse_samples(false);
        timed([&] { train_steps(o.steps); }, td, cd);
        cpu::use_sparse_samples(true);
        timed([&] { train_steps(o.steps); }, ts, cs);
        dense_ms.push_back(td);
        paired_ms.push_back(ts);
    }
    whole_steps(3);
    for (int r = 0; r < o.repeats; ++r) {
        double tw, cw;
        timed([&] { whole_steps(o.steps); }, tw, cw);
        whole_ms.push_back(tw);
    }
    const double t_split = median(split_ms), t_whole = median(whole_ms);
    std::printf("  products as whole calls (%d-thread OpenBLAS): %.3f ms (median), %.2fx the engine's blocks\n",
                threads, t_whole, t_whole / t_split);
    const double ts = median(step_ms), tg = std::min(t_split, t_whole), q = ts / tg;
    const double ex_s = double(o.batch) / (ts * 1e-3);
    std::printf("  median: step %.3f ms, products alone %.3f ms (%.1f GFLOP/s): step / products %.3f, %s\n", ts, tg,
                flops / (tg * 1e-3) * 1e-9, q,
                q >= 1 ? (std::to_string(int(100.0 * (1.0 - 1.0 / q) + 0.5)) + "% of the step outside the products").c_str()
                       : "less than the products: the sparse samples' products are row sums");
    // Sweeps per step: k, at each temperature for PT.
    const double sweeps = double(o.k) * double(o.method == Method::pt ? o.temperatures : 1);
    std::printf("  throughput: %.0f examples/s = %.0f examples x Gibbs sweeps/s (products alone: %.0f examples/s)\n",
                ex_s, ex_s * sweeps, double(o.batch) / (tg * 1e-3));
    const double td = median(dense_ms), tp = median(paired_ms);
    std::printf("  every Gibbs product through sgemm instead: step %.3f ms against %.3f ms (medians of %d, "
                "alternating): sparse samples %.2fx\n", td, tp, o.repeats, td / tp);
    std::printf("RESULT engine=rbm method=%s k=%d batch=%zu hidden=%zu threads=%d measure=%d ex_per_s=%.1f "
                "ex_gibbs_per_s=%.1f step_ms=%.4f gemm_ms=%.4f ratio=%.4f outside=%.4f gflop=%.5f engine_threads=%d "
                "blas_threads=%d whole_ms=%.4f dense_step_ms=%.4f\n",
                o.method == Method::pt ? "pt" : o.method == Method::pcd ? "pcd" : "cd", o.k, o.batch, o.hidden, o.threads, int(o.measure), ex_s,
                ex_s * sweeps, ts, tg, q, 1.0 - 1.0 / q, flops * 1e-9, threads, blas_threads, t_whole, td);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "rbm_bench: " << e.what() << std::endl;
    return 1;
}
