// The CPU engine's kernels: Philox words bit for bit against Stream::block on both
// paths, the vectorised exp / sigmoid / softplus against std:: within float rounding and
// bit for bit against their scalar forms, the fused passes against plain loops; and the
// engine on several loop threads against one thread.
#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/cpu_kernels.hpp"
#include "engine/engine.hpp"
#include "model/exact.hpp"
#include "test_models.hpp"
#include "test_threads.hpp"

using namespace rbm;

namespace {

uint32_t bits(float x) {
    uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return b;
}

std::vector<float> test_inputs() {
    std::vector<float> x = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, 0.5f, -0.5f, 1.0f, -1.0f, 10.0f, -10.0f,
                            20.0f, -20.0f, 87.0f, -87.0f, 87.5f, -87.5f, 88.0f, -88.0f, 88.5f, -88.5f,
                            100.0f, -100.0f, 1e30f, -1e30f};
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> wide(-90.0f, 90.0f), narrow(-6.0f, 6.0f);
    for (int i = 0; i < 20000; ++i) x.push_back(i % 2 ? wide(gen) : narrow(gen));
    return x;
}

}  // namespace

TEST(CpuKernels, PhiloxWordsAreStreamBlocksBitForBit) {
    const Stream s = Stream::make(0xDEADBEEFu, 3, Purpose::gibbs);
    const uint64_t step = (uint64_t(7) << 32) | 12345u;  // both halves of the step counter
    for (bool simd : {true, false}) {
        const bool before = cpu::use_simd_philox(simd);
        // Starts and lengths that are not multiples of a block or of 16 blocks.
        for (uint64_t first : {uint64_t(0), uint64_t(1), uint64_t(3), uint64_t(64), uint64_t(250),
                               (uint64_t(1) << 34) - 6}) {
            for (std::size_t count : {std::size_t(1), std::size_t(5), std::size_t(64), std::size_t(1000)}) {
                std::vector<uint32_t> got(count);
                cpu::philox_words(s, step, 9, first, count, got.data());
                for (std::size_t i = 0; i < count; ++i) {
                    const uint64_t e = first + i;
                    const uint32_t want = s.block(step, 9, uint32_t(e >> 2)).v[e & 3u];
                    ASSERT_EQ(got[i], want) << "simd " << simd << " element " << e;
                }
            }
        }
        cpu::use_simd_philox(before);
    }
}

TEST(CpuKernels, ExpSigmoidSoftplusWithinFloatRounding) {
    for (float x : test_inputs()) {
        const double e = std::exp(double(x));
        const float fe = cpu::fast_expf(x);
        if (x < -87.34f) EXPECT_EQ(fe, 0.0f) << x;
        else if (x > 88.0f) EXPECT_TRUE(std::isinf(fe) && fe > 0) << x;
        else if (x < -87.0f) EXPECT_NEAR(fe, e, 1e-6 * e + 2e-45) << x;  // near the denormals
        else EXPECT_NEAR(fe, e, 4e-7 * e) << x;
        const double sig = 1.0 / (1.0 + std::exp(-double(x)));
        EXPECT_NEAR(cpu::fast_sigmoidf(x), sig, 3e-7 * sig + 1e-30) << x;
        const double sp = exact::softplus(double(x));
        EXPECT_NEAR(cpu::fast_softplusf(x), sp, 4e-7 * sp + 2e-38) << x;
        EXPECT_NEAR(cpu::sigmoidf(x), sig, 3e-7 * sig + 1e-30) << x;
        EXPECT_NEAR(cpu::softplusf(x), sp, 4e-7 * sp + 2e-38) << x;
    }
    EXPECT_TRUE(std::isnan(cpu::fast_sigmoidf(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_TRUE(std::isnan(cpu::fast_softplusf(std::numeric_limits<float>::quiet_NaN())));
}

// The dispatched vector loops give the same bits as the scalar forms, whatever the ISA.
TEST(CpuKernels, VectorLoopsMatchScalarFormsBitForBit) {
    const std::vector<float> x = test_inputs();
    const std::size_t cols = 37, rows = x.size() / cols, n = rows * cols;
    std::vector<float> bias(cols), prob(n);
    for (std::size_t c = 0; c < cols; ++c) bias[c] = 0.25f * float(c % 5) - 0.5f;
    cpu::add_bias_sigmoid(x.data(), bias.data(), prob.data(), rows, cols);
    double softplus_sum = 0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) {
            const float a = x[r * cols + c] + bias[c];
            ASSERT_EQ(bits(prob[r * cols + c]), bits(cpu::fast_sigmoidf(a))) << a;
            softplus_sum += cpu::fast_softplusf(a);
        }
    const double got = cpu::sum_softplus(x.data(), bias.data(), rows, cols);
    EXPECT_NEAR(got, softplus_sum, 1e-12 * std::abs(softplus_sum));
}

TEST(CpuKernels, FusedActivateAndSampleMatchesSeparatePasses) {
    const Stream s = Stream::make(5, 1, Purpose::gibbs);
    for (std::size_t cols : {std::size_t(7), std::size_t(500), std::size_t(784)}) {
        const std::size_t rows = 13, n = rows * cols;
        std::vector<float> pre(n), bias(cols), prob(n), sample(n), prob2(n), sample2(n), sample3(n);
        std::mt19937 gen{unsigned(cols)};
        std::normal_distribution<float> normal(0.0f, 3.0f);
        for (float& v : pre) v = normal(gen);
        for (float& v : bias) v = normal(gen);
        cpu::activate_and_sample(pre.data(), bias.data(), prob.data(), sample.data(), rows, cols, s, 77, 4);
        cpu::activate_and_sample(pre.data(), bias.data(), nullptr, sample3.data(), rows, cols, s, 77, 4);
        cpu::add_bias_sigmoid(pre.data(), bias.data(), prob2.data(), rows, cols);
        cpu::sample_bernoulli(prob2.data(), sample2.data(), n, s, 77, 4);
        std::size_t ones = 0;
        for (std::size_t e = 0; e < n; ++e) {
            ASSERT_EQ(prob[e], prob2[e]);
            ASSERT_EQ(sample[e], sample2[e]);
            ASSERT_EQ(sample[e], sample3[e]);
            // The draw is the documented one: uniform_at(e) < p.
            ASSERT_EQ(sample[e], uniform_at(s, 77, 4, e) < prob[e] ? 1.0f : 0.0f);
            ones += sample[e] == 1.0f;
        }
        EXPECT_GT(ones, n / 4);
        EXPECT_LT(ones, 3 * n / 4);
        // In place (pre aliases prob), as the engine may call it.
        std::vector<float> inplace = pre;
        cpu::add_bias_sigmoid(inplace.data(), bias.data(), inplace.data(), rows, cols);
        EXPECT_EQ(inplace, prob2);
    }
}

TEST(CpuKernels, MonitoringSumsMatchDoublePrecision) {
    std::mt19937 gen(3);
    std::normal_distribution<float> normal(0.0f, 4.0f);
    std::uniform_real_distribution<float> unit(0.0f, 1.0f);
    const std::size_t n = 777;
    std::vector<float> pre(n), bias(n), shift(n), v(n);
    for (std::size_t j = 0; j < n; ++j) {
        pre[j] = normal(gen);
        bias[j] = normal(gen);
        shift[j] = normal(gen);
        v[j] = unit(gen);
    }
    for (float sign : {1.0f, -1.0f}) {
        double want = 0;
        for (std::size_t j = 0; j < n; ++j) {
            const double a = double(pre[j] + bias[j]);
            want += exact::softplus(double((pre[j] + bias[j]) + sign * shift[j])) - exact::softplus(a);
        }
        EXPECT_NEAR(cpu::softplus_shift_delta(pre.data(), bias.data(), shift.data(), sign, n), want, 1e-3);
    }
    double xent = 0;
    for (std::size_t j = 0; j < n; ++j) {
        const double a = double(pre[j] + bias[j]);
        xent += exact::softplus(a) - double(v[j]) * a;
    }
    EXPECT_NEAR(cpu::bernoulli_xent(pre.data(), bias.data(), v.data(), n), xent, 1e-6 * std::abs(xent));
}

TEST(CpuKernels, SumRowsIsTheProductWithABinaryVector) {
    const std::size_t nv = 50, nh = 33;
    std::vector<float> w(nv * nh);
    std::mt19937 gen(4);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : w) x = normal(gen);
    const std::vector<uint32_t> ones = {0, 3, 4, 17, 49};
    std::vector<float> got(nh), want(nh, 0.0f), x(nv, 0.0f);
    for (uint32_t i : ones) x[i] = 1.0f;
    cpu::sum_rows(w.data(), nh, ones.data(), ones.size(), got.data(), nh);
    cpu::gemm(false, false, 1, nh, nv, x.data(), w.data(), want.data());
    for (std::size_t j = 0; j < nh; ++j) EXPECT_NEAR(got[j], want[j], 1e-5f);
    cpu::sum_rows(w.data(), nh, ones.data(), 0, got.data(), nh);
    for (float g : got) EXPECT_EQ(g, 0.0f);
}

// Products in column blocks (and gradient rows in blocks) equal one whole product up to
// rounding, and after() sees every column once, in order, in runs of 128 or more.
TEST(CpuKernels, BlockedProductsMatchWholeProducts) {
    const std::size_t m = 20, k = 784, n = 500;
    std::mt19937 gen(8);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> a(m * k), b(k * n), bt(n * k), whole(m * n), blocked(m * n);
    for (float& x : a) x = normal(gen);
    for (float& x : b) x = normal(gen);
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < n; ++j) bt[j * k + i] = b[i * n + j];
    cpu::gemm(false, false, m, n, k, a.data(), b.data(), whole.data());
    for (bool trans_b : {false, true}) {
        std::vector<std::pair<std::size_t, std::size_t>> seen;
        std::fill(blocked.begin(), blocked.end(), 0.0f);
        cpu::gemm_cols(trans_b, m, k, a.data(), k, trans_b ? bt.data() : b.data(), trans_b ? k : n, blocked.data(),
                       n, 16, n, [&](std::size_t x, std::size_t y) { seen.emplace_back(x, y); });
        for (std::size_t r = 0; r < m; ++r)
            for (std::size_t c = 16; c < n; ++c)
                ASSERT_NEAR(blocked[r * n + c], whole[r * n + c], 1e-4f * (1 + std::abs(whole[r * n + c])));
        ASSERT_FALSE(seen.empty());
        EXPECT_EQ(seen.front().first, 16u);
        EXPECT_EQ(seen.back().second, n);
        for (std::size_t i = 0; i + 1 < seen.size(); ++i) {
            EXPECT_EQ(seen[i].second, seen[i + 1].first);
            EXPECT_GE(seen[i].second - seen[i].first, 128u);
        }
    }
    // C[k, n] = A' B with A [m, k]: rows 100 .. 700 in blocks.
    std::vector<float> b2(m * n), g_whole(k * n), g_blocked(k * n, 0.0f);
    for (float& x : b2) x = normal(gen);
    cpu::gemm(true, false, k, n, m, a.data(), b2.data(), g_whole.data());
    cpu::gemm_at_rows(n, m, a.data(), k, b2.data(), n, g_blocked.data(), n, 100, 700);
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            const float want = i >= 100 && i < 700 ? g_whole[i * n + j] : 0.0f;
            ASSERT_NEAR(g_blocked[i * n + j], want, 1e-4f * (1 + std::abs(want)));
        }
    // Where OpenBLAS has small-matrix kernels the blocks fit them; elsewhere one call.
    const std::size_t width = cpu::gemm_block_cols(false, m, k, n);
    EXPECT_TRUE(width == n || (width >= 16 && width * m * k <= 1000000u)) << width;
    const bool before = cpu::use_gemm_blocks(false);
    EXPECT_EQ(cpu::gemm_block_cols(false, m, k, n), n);
    cpu::use_gemm_blocks(before);
}

TEST(CpuKernels, GemmRecorderListsShapes) {
    std::vector<cpu::GemmShape> log;
    std::vector<float> a(6, 1.0f), b(12, 1.0f), c(8, 0.0f);
    cpu::record_gemms(&log);
    cpu::gemm(false, true, 2, 4, 3, a.data(), b.data(), c.data());
    cpu::record_gemms(nullptr);
    cpu::gemm(false, false, 2, 4, 3, a.data(), b.data(), c.data());
    ASSERT_EQ(log.size(), 1u);
    EXPECT_TRUE(log[0].trans_b);
    EXPECT_EQ(log[0].m * log[0].n * log[0].k, 24u);
    EXPECT_EQ(c[0], 3.0f);
}

// ---------------------------------------------------------------- the engine on several threads

namespace {

using test::ThreadsGuard;

struct RunResult {
    std::vector<float> params, velocity;
    std::vector<uint8_t> chains;
    MetricSums sums;
};

// `steps` training steps (PCD or CD) of a small RBM on real-valued rows with `threads`
// loop threads.
RunResult run_steps(int threads, Method method, RbmShape shape, int steps, bool binary) {
    ThreadsGuard guard(threads);
    const ParamBuffer p = test::random_params(shape, 0.3, 31);
    std::vector<float> rows = test::random_binary_rows(40, shape.n_visible, 32);
    if (!binary)
        for (std::size_t e = 0; e < rows.size(); ++e) rows[e] = rows[e] ? 0.55f + 0.4f * float(e % 7) / 7 : 0.1f * float(e % 3);
    Dataset d;
    d.source = "test";
    d.n_cols = shape.n_visible;
    d.n_rows = 40;
    d.values = rows;
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    engine->set_velocity(ParamBuffer(shape));
    engine->set_training_shard(d);
    StepSettings s{.method = method, .k = 3, .batch = 10, .chains = 10, .seed = 5};
    if (method == Method::pcd) engine->set_chains(std::vector<uint8_t>(s.chains * shape.n_hidden, 0));
    std::vector<uint32_t> order(40);
    for (uint32_t i = 0; i < 40; ++i) order[i] = (i * 7) % 40;
    for (int step = 0; step < steps; ++step) {
        StepSpec spec;
        spec.step = uint64_t(step);
        spec.pl_bit = std::size_t(step) % shape.n_visible;
        engine->compute_gradient(order.data() + (step % 4) * 10, s, spec);
        engine->apply_update(UpdateRule{0.05f, 0.5f, 0.001f}, 1.0f);
    }
    RunResult r;
    ParamBuffer out(shape), vel(shape);
    engine->get_params(out);
    engine->get_velocity(vel);
    r.params = out.values;
    r.velocity = vel.values;
    if (method == Method::pcd) r.chains = engine->get_chains();
    r.sums = engine->take_metric_sums();
    return r;
}

}  // namespace

TEST(CpuEngineThreads, DeterministicForAThreadCount) {
    for (int threads : {2, 3}) {
        const RunResult a = run_steps(threads, Method::pcd, {37, 29}, 4, false);
        const RunResult b = run_steps(threads, Method::pcd, {37, 29}, 4, false);
        EXPECT_EQ(a.params, b.params) << threads;
        EXPECT_EQ(a.velocity, b.velocity) << threads;
        EXPECT_EQ(a.chains, b.chains) << threads;
        EXPECT_EQ(a.sums.pseudo_likelihood, b.sums.pseudo_likelihood) << threads;
    }
}

// Split over threads, a step computes the same thing up to float rounding: the same
// draws (keyed by element), the same costs.
TEST(CpuEngineThreads, SameStepsAsOneThreadUpToRounding) {
    for (Method method : {Method::pcd, Method::cd})
        for (bool binary : {false, true})
            for (RbmShape shape : {RbmShape{37, 29}, RbmShape{6, 4}, RbmShape{100, 70}})
                for (int threads : {2, 3}) {
                    const RunResult one = run_steps(1, method, shape, 2, binary);
                    const RunResult many = run_steps(threads, method, shape, 2, binary);
                    ASSERT_EQ(one.params.size(), many.params.size());
                    for (std::size_t e = 0; e < one.params.size(); ++e)
                        ASSERT_NEAR(one.params[e], many.params[e], 1e-5f) << "element " << e << " threads " << threads;
                    EXPECT_EQ(one.chains, many.chains);
                    EXPECT_NEAR(one.sums.pseudo_likelihood, many.sums.pseudo_likelihood,
                                1e-5 * std::abs(one.sums.pseudo_likelihood));
                    EXPECT_NEAR(one.sums.reconstruction_xent, many.sums.reconstruction_xent,
                                1e-5 * std::abs(one.sums.reconstruction_xent));
                    EXPECT_EQ(one.sums.examples, many.sums.examples);
                }
}

// `rbm train --threads N` sets OpenBLAS's count; the engine takes it over at its next step.
TEST(CpuEngineThreads, EngineAdoptsOpenBlasThreads) {
    ThreadsGuard guard(1);
    openblas_set_num_threads(3);
    cpu::adopt_blas_threads();
    EXPECT_EQ(cpu::threads(), 3);
    EXPECT_EQ(openblas_get_num_threads(), 1);
    cpu::adopt_blas_threads();  // nothing more to adopt
    EXPECT_EQ(cpu::threads(), 3);
}

TEST(CpuEngineThreads, ShareCoversTheRangeInOrder) {
    for (std::size_t n : {std::size_t(0), std::size_t(4), std::size_t(500), std::size_t(784)})
        for (int parts : {1, 2, 3, 5}) {
            std::size_t next = 0;
            for (int t = 0; t < parts; ++t) {
                const auto [b, e] = cpu::share(n, t, parts);
                EXPECT_EQ(b, next);
                EXPECT_LE(b, e);
                next = e;
            }
            EXPECT_EQ(next, n);
        }
}
