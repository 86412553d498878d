// Products of sparse samples as sums of rows (cpu_kernels.hpp, "sparse samples"): the
// kernels against plain loops and sgemm, and the CPU engine using them against the
// engine with every product through sgemm, from the same state. With weights that are
// multiples of 1/64 and binary data every pre-activation is exact both ways, so the
// chains must be identical bit for bit; with real-valued data and weights they agree up
// to rounding (a near-tie draw may flip).
// No FMA contraction here either (as in cpu_kernels.cpp): the plain loops below are the
// kernels' exact reference, also in a -march=native build.
#pragma GCC optimize("fp-contract=off")

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu_kernels.hpp"
#include "engine/engine.hpp"
#include "util/check.hpp"
#include "test_models.hpp"
#include "test_threads.hpp"

using namespace rbm;

namespace {

struct SparseSwitch {  // sets cpu::use_sparse_samples for a scope
    bool was;
    explicit SparseSwitch(bool on) : was(cpu::use_sparse_samples(on)) {}
    ~SparseSwitch() { cpu::use_sparse_samples(was); }
};

double density(const std::vector<float>& x) {
    std::size_t on = 0;
    for (float v : x) on += v != 0.0f;
    return double(on) / double(x.size());
}

struct Steps {
    std::vector<std::vector<float>> gradients;
    std::vector<std::vector<uint8_t>> chains;
    MetricSums sums;
    std::vector<std::vector<uint8_t>> later_chains;  // after an update, then after new parameters
};

// An engine at p on `rows`, with zero velocity and, for PCD, s.chains chains at h = 0.
std::unique_ptr<Engine> engine_at(const ParamBuffer& p, const std::vector<float>& rows, const StepSettings& s) {
    auto engine = make_cpu_engine(p.shape);
    engine->set_params(p);
    engine->set_velocity(ParamBuffer(p.shape));
    engine->set_training_shard(test::dataset_of(rows, p.shape.n_visible));
    if (s.method == Method::pcd) engine->set_chains(std::vector<uint8_t>(s.chains * p.shape.n_hidden, 0));
    return engine;
}

// Four gradient steps (no update, so the weights stay as given), step j on the rows from
// first_row(j); each step's gradient and chains, and the costs.
template <typename FirstRow>
Steps gradient_steps(Engine& engine, const StepSettings& s, bool measure, FirstRow first_row) {
    const std::size_t nv = engine.shape().n_visible;
    std::vector<uint32_t> order(64);
    std::iota(order.begin(), order.end(), 0u);
    Steps out;
    for (uint64_t step = 0; step < 4; ++step) {
        StepSpec spec;
        spec.step = step;
        spec.pl_bit = std::size_t(step) % nv;
        spec.measure = measure;
        engine.compute_gradient(order.data() + first_row(step), s, spec);
        const GradientView g = engine.gradient();
        out.gradients.emplace_back(g.data, g.data + g.count);
        out.chains.push_back(engine.get_chains());
    }
    out.sums = engine.take_metric_sums();
    return out;
}

// Four gradient steps from params p; then an update and two steps, new parameters (W
// negated) and two steps: W's transposed copy must follow every change of W.
Steps run_steps(bool sparse, int threads, Method method, const ParamBuffer& p, const std::vector<float>& rows) {
    SparseSwitch sparse_switch(sparse);
    test::ThreadsGuard loop_threads(threads);
    const RbmShape shape = p.shape;
    StepSettings s{.method = method, .k = 3, .batch = 12, .chains = 12, .seed = 8};
    auto engine = engine_at(p, rows, s);
    if (method == Method::cd) engine->set_chains(std::vector<uint8_t>(s.chains * shape.n_hidden, 0));
    Steps out = gradient_steps(*engine, s, true, [&](uint64_t step) { return step * s.batch; });
    std::vector<uint32_t> order(rows.size() / shape.n_visible);
    std::iota(order.begin(), order.end(), 0u);
    ParamBuffer negated = p;
    for (std::size_t e = 0; e < shape.weight_count(); ++e) negated.values[e] = -negated.values[e];
    for (uint64_t step = 4; step < 8; ++step) {
        if (step == 4) engine->apply_update(UpdateRule{2.0f, 0.0f, 0.0f}, 1.0f);
        if (step == 6) engine->set_params(negated);
        StepSpec spec;
        spec.step = step;
        spec.measure = false;
        engine->compute_gradient(order.data() + (step % 4) * s.batch, s, spec);
        out.later_chains.push_back(engine->get_chains());
    }
    return out;
}

// A model whose samples are sparse, as a trained one's: negative biases.
ParamBuffer sparse_model(RbmShape shape, bool dyadic) {
    ParamBuffer p = dyadic ? test::dyadic_params(shape, test::dyadic_spread(shape), 41)
                           : test::random_params(shape, 0.25, 41);
    for (std::size_t i = 0; i < shape.n_visible; ++i) p.vbias()[i] = dyadic ? p.vbias()[i] / 4 - 2.5f : -2.5f;
    for (std::size_t j = 0; j < shape.n_hidden; ++j) p.hbias()[j] = dyadic ? p.hbias()[j] / 4 - 2.0f : -2.0f;
    return p;
}

// PCD-2 with batches of 16 and 16 chains: the deferred-gradient tests' steps.
StepSettings deferral_settings() {
    return {.method = Method::pcd, .k = 2, .batch = 16, .chains = 16, .seed = 3};
}

// Rows with about 12% of pixels on: binary, or real-valued like MNIST's x / 255.
std::vector<float> sparse_rows(std::size_t n, std::size_t cols, bool binary) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> rows(n * cols);
    for (float& x : rows) x = u(gen) < 0.12f ? (binary ? 1.0f : 0.2f + 0.8f * u(gen)) : 0.0f;
    return rows;
}

}  // namespace

// Both ways of listing (AVX-512 compress where the CPU has it, 64-bit masks): every
// nonzero (NaN included, -0 not) in order with its value, nothing written past the list.
TEST(SparseSamples, ListNonzerosFindsEveryNonzeroInOrder) {
    for (bool avx512 : {true, false}) {
        const bool was = cpu::use_avx512_list(avx512);
        std::mt19937 gen(1);
        std::uniform_real_distribution<float> u(0.0f, 1.0f);
        for (std::size_t n : {0, 1, 15, 16, 17, 63, 64, 65, 130, 784}) {
            std::vector<float> x(n);
            for (float& v : x) v = u(gen) < 0.2f ? u(gen) + 0.01f : 0.0f;
            if (n > 3) x[3] = -0.0f;  // a zero
            if (n > 5) x[5] = std::numeric_limits<float>::quiet_NaN();
            if (n > 16) x[16] = 1.0f;
            std::vector<uint32_t> want, got(n + 1, 7777u);
            for (std::size_t e = 0; e < n; ++e)
                if (x[e] != 0.0f) want.push_back(uint32_t(e));
            std::vector<float> values(n + 1, -5.0f);
            const std::size_t count = cpu::list_nonzeros(x.data(), n, got.data(), values.data());
            ASSERT_EQ(count, want.size()) << n;
            EXPECT_EQ(std::vector<uint32_t>(got.begin(), got.begin() + long(count)), want) << n;
            EXPECT_EQ(got[count], 7777u) << "wrote past the list, n " << n;
            EXPECT_EQ(values[count], -5.0f) << "wrote past the values, n " << n;
            for (std::size_t k = 0; k < count; ++k)
                EXPECT_EQ(std::memcmp(&values[k], &x[want[k]], sizeof(float)), 0) << n << " " << k;
            EXPECT_EQ(cpu::list_nonzeros(x.data(), n, got.data()), count);
        }
        cpu::use_avx512_list(was);
    }
}

// sum_listed_rows against a plain loop in list order, acc = acc + w row: the same bits
// for every width (each path of its register blocks and tail), column offset, result
// row and weights or none; so a thread's block of columns or rows is bit for bit that
// part of the whole. And against sgemm for the product it stands for.
TEST(SparseSamples, ListedRowSumsAreTheProductsInListOrder) {
    const std::size_t nv = 50, nh = 203, n_out = 5;
    const ParamBuffer p = test::random_params({nv, nh}, 1.0, 3);
    std::mt19937 gen(2);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n_out * nv, 0.0f), values(n_out * nv, 0.0f);
    std::vector<uint32_t> rows(n_out * nv, 0u);
    std::vector<std::size_t> counts(n_out);
    for (std::size_t r = 0; r < n_out; ++r) {
        for (std::size_t i = 0; i < nv; ++i)
            if (u(gen) < 0.1 + 0.2 * double(r)) x[r * nv + i] = 0.1f + u(gen);
        counts[r] = cpu::list_nonzeros(x.data() + r * nv, nv, rows.data() + r * nv, values.data() + r * nv);
        for (std::size_t k = 0; k < counts[r]; ++k) EXPECT_EQ(values[r * nv + k], x[r * nv + rows[r * nv + k]]);
    }
    counts[1] = 0;  // a row with nothing listed sums to zeros
    for (const float* weights : std::vector<const float*>{values.data(), nullptr}) {
        for (std::size_t j0 : {0, 3}) {
            for (std::size_t n : {1, 15, 16, 17, 33, 48, 63, 64, 65, 112, 128, 129, 200}) {
                const std::size_t ldo = nh + 1;
                std::vector<float> got(n_out * ldo, -9.0f);
                cpu::sum_listed_rows(p.W() + j0, nh, rows.data(), weights, nv, counts.data(), n_out, got.data(), ldo,
                                     n);
                for (std::size_t r = 0; r < n_out; ++r) {
                    for (std::size_t j = 0; j < n; ++j) {
                        float want = 0.0f;
                        for (std::size_t k = 0; k < counts[r]; ++k) {
                            const float row = p.W()[std::size_t(rows[r * nv + k]) * nh + j0 + j];
                            want += weights ? weights[r * nv + k] * row : row;
                        }
                        ASSERT_EQ(got[r * ldo + j], want) << "n " << n << " column " << j << " row " << r;
                    }
                    ASSERT_EQ(got[r * ldo + n], -9.0f) << "wrote past column " << n;
                }
            }
        }
    }
    // The products they stand for.
    std::vector<float> binary(x.size());
    for (std::size_t e = 0; e < x.size(); ++e) binary[e] = x[e] != 0.0f ? 1.0f : 0.0f;
    counts[1] = cpu::list_nonzeros(x.data() + nv, nv, rows.data() + nv, values.data() + nv);
    for (bool weighted : {true, false}) {
        std::vector<float> want(n_out * nh), got(n_out * nh);
        cpu::gemm(false, false, n_out, nh, nv, weighted ? x.data() : binary.data(), p.W(), want.data());
        cpu::sum_listed_rows(p.W(), nh, rows.data(), weighted ? values.data() : nullptr, nv, counts.data(), n_out,
                             got.data(), nh, nh);
        for (std::size_t e = 0; e < want.size(); ++e) EXPECT_NEAR(got[e], want[e], 1e-5f) << e;
    }
}

TEST(SparseSamples, TransposeTakesWsColumnsToRows) {
    const std::size_t nv = 50, nh = 37;
    std::vector<float> w(nv * nh), wt(nh * nv);
    std::iota(w.begin(), w.end(), 0.0f);
    cpu::transpose(nv, nh, w.data(), nh, wt.data(), nv);
    for (std::size_t i = 0; i < nv; ++i)
        for (std::size_t j = 0; j < nh; ++j) ASSERT_EQ(wt[j * nv + i], w[i * nh + j]);
    // A block of columns [5, 17), as a loop thread transposes its hidden units.
    std::vector<float> block(12 * nv, -1.0f);
    cpu::transpose(nv, 12, w.data() + 5, nh, block.data(), nv);
    for (std::size_t i = 0; i < nv; ++i)
        for (std::size_t j = 0; j < 12; ++j) ASSERT_EQ(block[j * nv + i], w[i * nh + 5 + j]);
}

TEST(SparseSamples, ChainStatesAreZerosAndOnes) {
    auto engine = make_cpu_engine({10, 4});
    engine->set_chains(std::vector<uint8_t>(8, 1));
    std::vector<uint8_t> bad(8, 0);
    bad[5] = 2;
    try {
        engine->set_chains(bad);
        ADD_FAILURE() << "a chain value of 2 was taken";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("chain state value 2 (chain 1, hidden unit 1) is not 0 or 1"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(engine->set_chains(std::vector<uint8_t>(7, 0)), Error);
}

TEST(SparseSamples, ThresholdAndSwitch) {
    EXPECT_TRUE(cpu::sparse_enough(3, 10));
    EXPECT_FALSE(cpu::sparse_enough(4, 10));
    SparseSwitch off(false);
    EXPECT_FALSE(cpu::sparse_enough(0, 10));
}

// Exact sums: the same chains bit for bit and the same gradient up to the order of its
// sums, on 1, 2 and 3 loop threads, PCD and CD.
TEST(SparseSamples, EngineTakesTheSameChainsAsWithProducts) {
    const RbmShape shape{120, 64};
    const ParamBuffer p = sparse_model(shape, true);
    const std::vector<float> rows = sparse_rows(48, shape.n_visible, true);
    for (Method method : {Method::pcd, Method::cd})
        for (int threads : {1, 2, 3}) {
            SCOPED_TRACE(testing::Message() << (method == Method::pcd ? "PCD" : "CD") << ", " << threads << " threads");
            const Steps sparse = run_steps(true, threads, method, p, rows);
            const Steps dense = run_steps(false, threads, method, p, rows);
            for (std::size_t step = 0; step < sparse.chains.size(); ++step) {
                EXPECT_EQ(sparse.chains[step], dense.chains[step]) << "step " << step;
                ASSERT_EQ(sparse.gradients[step].size(), dense.gradients[step].size());
                for (std::size_t e = 0; e < sparse.gradients[step].size(); ++e)
                    ASSERT_NEAR(sparse.gradients[step][e], dense.gradients[step][e], 1e-6f)
                        << "step " << step << " element " << e;
            }
            // The update's W differs in its last bits between the two (the gradients' sums
            // ran in different orders): a near-tie draw may flip, a stale W' flips many.
            for (std::size_t step = 0; step < sparse.later_chains.size(); ++step) {
                std::size_t flipped = 0;
                for (std::size_t e = 0; e < sparse.later_chains[step].size(); ++e)
                    flipped += sparse.later_chains[step][e] != dense.later_chains[step][e];
                EXPECT_LE(flipped, 3u) << "step " << 4 + step;
            }
            EXPECT_NEAR(sparse.sums.pseudo_likelihood, dense.sums.pseudo_likelihood,
                        1e-6 * std::abs(dense.sums.pseudo_likelihood));
            EXPECT_NEAR(sparse.sums.reconstruction_xent, dense.sums.reconstruction_xent,
                        1e-6 * std::abs(dense.sums.reconstruction_xent));
            // The regime the row sums are for: sparse chains (else the test proves nothing).
            if (method == Method::pcd) {
                const std::vector<uint8_t>& last = sparse.chains.back();
                EXPECT_LT(density(std::vector<float>(last.begin(), last.end())), 0.25);
                EXPECT_GT(density(std::vector<float>(last.begin(), last.end())), 0.01);
            }
        }
}

// Real-valued data and weights: the positive phase as scaled row sums; the same steps up
// to rounding.
TEST(SparseSamples, EngineAgreesWithProductsOnRealValuedData) {
    const RbmShape shape{130, 70};
    const ParamBuffer p = sparse_model(shape, false);
    const std::vector<float> rows = sparse_rows(48, shape.n_visible, false);
    EXPECT_LT(density(rows), 0.2);
    for (int threads : {1, 2}) {
        const Steps sparse = run_steps(true, threads, Method::pcd, p, rows);
        const Steps dense = run_steps(false, threads, Method::pcd, p, rows);
        for (std::size_t step = 0; step < sparse.chains.size(); ++step) {
            std::size_t flipped = 0;
            for (std::size_t e = 0; e < sparse.chains[step].size(); ++e)
                flipped += sparse.chains[step][e] != dense.chains[step][e];
            EXPECT_LE(flipped, 2u) << "step " << step << ", " << threads << " threads";
            std::size_t off = 0;
            for (std::size_t e = 0; e < sparse.gradients[step].size(); ++e)
                off += std::abs(sparse.gradients[step][e] - dense.gradients[step][e]) > 1e-5f;
            EXPECT_LE(off, sparse.gradients[step].size() / 100) << "step " << step << ", " << threads << " threads";
        }
    }
}

// ---------------------------------------------------------------- every configuration

namespace {

// Rows with about 12% nonzero, the real values multiples of 1/4: with dyadic weights
// every sum is exact for real-valued data too, so both paths must agree bit for bit.
std::vector<float> exact_rows(std::size_t n, std::size_t cols, bool binary) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> rows(n * cols);
    for (float& x : rows) x = u(gen) < 0.12f ? (binary ? 1.0f : 0.25f * float(int(1 + 3 * u(gen)))) : 0.0f;
    return rows;
}

struct Config {
    RbmShape shape;
    int threads;
    Method method;
    std::size_t batch, chains;
    bool binary, centered, measure;
};

Steps run_config(bool sparse, const Config& c) {
    SparseSwitch sparse_switch(sparse);
    test::ThreadsGuard loop_threads(c.threads);
    StepSettings s{.method = c.method, .k = 2, .batch = c.batch, .chains = c.chains, .seed = 3};
    auto engine = engine_at(sparse_model(c.shape, true), exact_rows(64, c.shape.n_visible, c.binary), s);
    if (c.centered)
        engine->set_offsets(Offsets{std::vector<float>(c.shape.n_visible, 0.125f),
                                    std::vector<float>(c.shape.n_hidden, 0.25f)});
    return gradient_steps(*engine, s, c.measure, [&](uint64_t step) { return (step * 5) % (64 - c.batch); });
}

}  // namespace

// Shapes with fewer units than threads, batch != chains, CD and PCD, binary and
// real-valued data, centering, costs on and off, 1 to 4 threads: bit for bit.
TEST(SparseSamples, EveryConfigurationTakesTheSameChainsAsWithProducts) {
    for (RbmShape shape : {RbmShape{20, 12}, RbmShape{40, 24}, RbmShape{120, 64}, RbmShape{17, 70}})
        for (int threads : {1, 2, 3, 4})
            for (Method method : {Method::pcd, Method::cd})
                for (auto [batch, chains] : {std::pair<std::size_t, std::size_t>{12, 12}, {7, 19}, {19, 5}})
                    for (bool binary : {true, false})
                        for (bool centered : {false, true})
                            for (bool measure : {false, true}) {
                                if (method == Method::cd && batch != chains && batch != 7) continue;
                                const Config c{shape, threads, method, batch, chains, binary, centered, measure};
                                SCOPED_TRACE(testing::Message()
                                             << shape.n_visible << "x" << shape.n_hidden << ", " << threads
                                             << " threads, " << (method == Method::pcd ? "PCD" : "CD") << ", batch "
                                             << batch << ", chains " << chains << (binary ? ", binary" : ", real")
                                             << (centered ? ", centered" : "") << (measure ? ", costs" : ""));
                                const Steps a = run_config(true, c), b = run_config(false, c);
                                for (std::size_t step = 0; step < a.gradients.size(); ++step) {
                                    ASSERT_EQ(a.chains[step], b.chains[step]) << "step " << step;
                                    ASSERT_EQ(a.gradients[step].size(), b.gradients[step].size());
                                    for (std::size_t e = 0; e < a.gradients[step].size(); ++e)
                                        ASSERT_NEAR(a.gradients[step][e], b.gradients[step][e], 1e-6f)
                                            << "step " << step << " element " << e;
                                }
                                if (measure) {
                                    EXPECT_NEAR(a.sums.pseudo_likelihood, b.sums.pseudo_likelihood,
                                                1e-6 * std::abs(b.sums.pseudo_likelihood) + 1e-9);
                                    EXPECT_NEAR(a.sums.reconstruction_xent, b.sums.reconstruction_xent,
                                                1e-6 * std::abs(b.sums.reconstruction_xent) + 1e-9);
                                }
                            }
}

namespace {

void train(Engine& e, const StepSettings& s, uint64_t from, uint64_t to, const std::vector<uint32_t>& order) {
    for (uint64_t step = from; step < to; ++step) {
        StepSpec spec;
        spec.step = step;
        spec.pl_bit = std::size_t(step) % e.shape().n_visible;
        spec.measure = step % 2;
        e.compute_gradient(order.data() + (step * 5) % 40, s, spec);
        e.apply_update(UpdateRule{0.5f, 0.5f, 0.001f, 0.01f}, 1.0f);
    }
}

}  // namespace

// What a checkpoint holds (parameters, velocity, chains, offsets) continues bit for bit:
// W's transposed copy is derived state, rebuilt by a fresh engine.
TEST(SparseSamples, ResumesBitForBit) {
    for (int threads : {1, 2, 3})
        for (bool centered : {false, true})
            for (bool binary : {true, false})
                for (Method method : {Method::pcd, Method::cd}) {
                    SCOPED_TRACE(testing::Message() << threads << " threads" << (centered ? ", centered" : "")
                                                    << (binary ? ", binary" : ", real")
                                                    << (method == Method::pcd ? ", PCD" : ", CD"));
                    test::ThreadsGuard loop_threads(threads);
                    const RbmShape shape{100, 50};
                    const std::vector<float> rows = exact_rows(64, shape.n_visible, binary);
                    StepSettings s{.method = method, .k = 3, .batch = 10, .chains = 14, .seed = 5};
                    std::vector<uint32_t> order(64);
                    std::iota(order.begin(), order.end(), 0u);
                    auto make = [&] {
                        auto e = engine_at(test::random_params(shape, 0.3, 7), rows, s);
                        if (centered)
                            e->set_offsets(Offsets{std::vector<float>(shape.n_visible, 0.125f),
                                                   std::vector<float>(shape.n_hidden, 0.25f)});
                        return e;
                    };
                    auto whole = make(), first = make(), second = make();
                    train(*whole, s, 0, 8, order);
                    train(*first, s, 0, 4, order);
                    ParamBuffer p(shape), v(shape);
                    first->get_params(p);
                    first->get_velocity(v);
                    second->set_params(p);
                    second->set_velocity(v);
                    second->set_offsets(first->get_offsets());
                    if (method == Method::pcd) second->set_chains(first->get_chains());
                    train(*second, s, 4, 8, order);
                    ParamBuffer a(shape), b(shape);
                    whole->get_params(a);
                    second->get_params(b);
                    EXPECT_EQ(a.values, b.values);
                    if (method == Method::pcd) {
                        EXPECT_EQ(whole->get_chains(), second->get_chains());
                    }
                }
}

// A gradient the engine summed from its lists but never stored (one rank: nobody asks
// for gradient() before the update, which then applies each row from registers) against
// the same steps with gradient() asked for first (stored, then momentum_update): the
// same parameters, velocity and chains (compared with ==: plain SGD leaves a -0 weight
// of an unlisted row -0 where the stored path makes it +0), on real-valued weights and
// data, with and without momentum and weight decay, for any thread count (whose row
// shares decide which rows each thread lists and updates). gradient() after the update
// still gives the step's gradient; an update before any gradient applies zeros; offsets
// set between the two are applied to deferred rows too.
TEST(SparseSamples, UpdateWithoutStoringTheGradientIsTheStoredUpdate) {
    const RbmShape shape{150, 70};
    const ParamBuffer p = sparse_model(shape, false);
    for (int threads : {1, 2, 3})
        for (bool binary : {true, false})
            for (const UpdateRule& rule : {UpdateRule{0.1f, 0.0f, 0.0f}, UpdateRule{0.1f, 0.0f, 0.01f}, UpdateRule{0.05f, 0.5f, 0.01f}}) {
                SCOPED_TRACE(testing::Message() << threads << " threads, " << (binary ? "binary" : "real")
                                                << ", momentum " << rule.momentum);
                test::ThreadsGuard loop_threads(threads);
                const std::vector<float> rows = sparse_rows(64, shape.n_visible, binary);
                ASSERT_LT(density(rows), 0.2);  // sparse enough for the listed gradient
                const StepSettings s = deferral_settings();
                auto stored = engine_at(p, rows, s), fused = engine_at(p, rows, s);
                std::vector<uint32_t> order(64);
                std::iota(order.begin(), order.end(), 0u);
                for (uint64_t step = 0; step < 6; ++step) {
                    StepSpec spec;
                    spec.step = step;
                    for (Engine* e : {stored.get(), fused.get()})
                        e->compute_gradient(order.data() + (step % 4) * s.batch, s, spec);
                    stored->gradient();
                    for (Engine* e : {stored.get(), fused.get()}) e->apply_update(rule, 0.5f);
                    ParamBuffer a(shape), b(shape), va(shape), vb(shape);
                    stored->get_params(a);
                    fused->get_params(b);
                    stored->get_velocity(va);
                    fused->get_velocity(vb);
                    ASSERT_EQ(a.values, b.values) << "step " << step;
                    ASSERT_EQ(va.values, vb.values) << "step " << step;
                    ASSERT_EQ(stored->get_chains(), fused->get_chains()) << "step " << step;
                    ASSERT_NE(a.values, p.values);
                    const GradientView want = stored->gradient(), got = fused->gradient();
                    ASSERT_EQ(std::vector<float>(got.data, got.data + got.count),
                              std::vector<float>(want.data, want.data + want.count))
                        << "gradient() after the update, step " << step;
                }
            }
}

TEST(SparseSamples, DeferredGradientEdges) {
    const RbmShape shape{150, 70};
    const ParamBuffer p = sparse_model(shape, false);
    const std::vector<float> rows = sparse_rows(64, shape.n_visible, false);
    const StepSettings s = deferral_settings();
    std::vector<uint32_t> order(64);
    std::iota(order.begin(), order.end(), 0u);
    ParamBuffer got(shape), want(shape);
    {  // an update before any gradient applies a zero gradient
        auto e = engine_at(p, rows, s);
        e->apply_update(UpdateRule{0.1f, 0.0f, 0.0f}, 1.0f);
        e->get_params(got);
        EXPECT_EQ(got.values, p.values);
    }
    // Offsets set between compute_gradient and apply_update correct deferred rows too.
    const Offsets offsets{std::vector<float>(shape.n_visible, 0.1f), std::vector<float>(shape.n_hidden, 0.2f)};
    auto stored = engine_at(p, rows, s), fused = engine_at(p, rows, s);
    for (Engine* e : {stored.get(), fused.get()}) {
        e->compute_gradient(order.data(), s, StepSpec{});
        e->set_offsets(offsets);
    }
    stored->gradient();
    for (Engine* e : {stored.get(), fused.get()}) e->apply_update(UpdateRule{0.1f, 0.0f, 0.0f}, 1.0f);
    stored->get_params(want);
    fused->get_params(got);
    EXPECT_EQ(got.values, want.values);
}

// One engine whose thread count (and so each thread's hidden units and rows of W') or
// batch changes between steps, against a fresh engine at each step.
TEST(SparseSamples, ThreadCountOrBatchChangingMidRun) {
    const RbmShape shape{100, 50};
    const std::vector<float> rows = exact_rows(64, shape.n_visible, true);
    std::vector<uint32_t> order(64);
    std::iota(order.begin(), order.end(), 0u);
    auto make = [&](const ParamBuffer& p) {
        auto e = make_cpu_engine(shape);
        e->set_params(p);
        e->set_velocity(ParamBuffer(shape));
        e->set_training_shard(test::dataset_of(rows, shape.n_visible));
        return e;
    };
    test::ThreadsGuard loop_threads(1);
    StepSettings s{.k = 2, .batch = 10, .chains = 10, .seed = 5};
    auto engine = make(test::random_params(shape, 0.3, 7));
    engine->set_chains(std::vector<uint8_t>(s.chains * shape.n_hidden, 0));
    const int threads[] = {2, 3, 2, 1, 2, 3};
    for (uint64_t step = 0; step < 6; ++step) {
        ParamBuffer p(shape);
        engine->get_params(p);
        auto fresh = make(p);
        fresh->set_chains(engine->get_chains());
        cpu::set_threads(threads[step]);
        StepSpec spec;
        spec.step = step;
        spec.measure = false;
        for (Engine* e : {engine.get(), fresh.get()}) {
            e->compute_gradient(order.data() + step * 5, s, spec);
            e->apply_update(UpdateRule{0.5f, 0.0f, 0.0f}, 1.0f);
        }
        ParamBuffer a(shape), b(shape);
        engine->get_params(a);
        fresh->get_params(b);
        EXPECT_EQ(a.values, b.values) << "step " << step;
        EXPECT_EQ(engine->get_chains(), fresh->get_chains()) << "step " << step;
    }
    // A new batch size with no update between: the buffers are reallocated, W' with them.
    for (int t : {1, 2}) {
        cpu::set_threads(t);
        s.method = Method::cd;
        s.batch = 10;
        auto a = make(sparse_model(shape, true));
        StepSpec spec;
        spec.measure = false;
        a->compute_gradient(order.data(), s, spec);
        s.batch = 12;
        spec.step = 1;
        a->compute_gradient(order.data(), s, spec);
        auto b = make(sparse_model(shape, true));
        b->compute_gradient(order.data(), s, spec);
        const GradientView ga = a->gradient(), gb = b->gradient();
        EXPECT_EQ(std::vector<float>(ga.data, ga.data + ga.count), std::vector<float>(gb.data, gb.data + gb.count))
            << t << " threads";
    }
}

// `rbm sample`'s chains (Engine::gibbs_visible) take the same states either way.
TEST(SparseSamples, GibbsVisibleTakesTheSameStatesAsWithProducts) {
    const RbmShape shape{90, 40};
    const ParamBuffer p = sparse_model(shape, true);
    for (int threads : {1, 2, 3})
        for (bool binary : {true, false}) {
            std::vector<float> v[2], mean[2];
            for (int sparse = 0; sparse < 2; ++sparse) {
                SparseSwitch sparse_switch(sparse == 1);
                test::ThreadsGuard loop_threads(threads);
                auto engine = make_cpu_engine(shape);
                engine->set_params(p);
                v[sparse] = exact_rows(6, shape.n_visible, binary);
                mean[sparse].assign(v[sparse].size(), 0.0f);
                engine->gibbs_visible(v[sparse].data(), mean[sparse].data(), 6, 25, Stream::make(4, 0, Purpose::sample), 9);
            }
            EXPECT_EQ(v[0], v[1]) << threads << " threads";
            EXPECT_EQ(mean[0], mean[1]) << threads << " threads";
            EXPECT_LT(density(v[1]), 0.3);
            EXPECT_GT(density(v[1]), 0.0);
        }
}
