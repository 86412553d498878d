// Products of sparse samples as sums of rows (cpu_kernels.hpp, "sparse samples"): the
// kernels against plain loops and sgemm, and the CPU engine using them against the
// engine with every product through sgemm, from the same state. With weights that are
// multiples of 1/64 and binary data every pre-activation is exact both ways, so the
// chains must be identical bit for bit; with real-valued data and weights they agree up
// to rounding (a near-tie draw may flip).
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu_kernels.hpp"
#include "engine/engine.hpp"
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

// Four gradient steps (no update, so the weights stay as given) from params p; then an
// update and two steps, new parameters (W negated) and two steps: W's transposed copy
// must follow every change of W.
Steps run_steps(bool sparse, int threads, Method method, const ParamBuffer& p, const std::vector<float>& rows) {
    SparseSwitch sparse_switch(sparse);
    test::ThreadsGuard loop_threads(threads);
    const RbmShape shape = p.shape;
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    engine->set_velocity(ParamBuffer(shape));
    engine->set_training_shard(test::dataset_of(rows, shape.n_visible));
    StepSettings s;
    s.method = method;
    s.k = 3;
    s.batch = 12;
    s.chains = 12;
    s.seed = 8;
    engine->set_chains(std::vector<uint8_t>(s.chains * shape.n_hidden, 0));
    std::vector<uint32_t> order(rows.size() / shape.n_visible);
    std::iota(order.begin(), order.end(), 0u);
    Steps out;
    for (uint64_t step = 0; step < 4; ++step) {
        StepSpec spec;
        spec.step = step;
        spec.pl_bit = std::size_t(step) % shape.n_visible;
        engine->compute_gradient(order.data() + step * s.batch, s, spec);
        const GradientView g = engine->gradient();
        out.gradients.emplace_back(g.data, g.data + g.count);
        out.chains.push_back(engine->get_chains());
    }
    out.sums = engine->take_metric_sums();
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

// Rows with about 12% of pixels on: binary, or real-valued like MNIST's x / 255.
std::vector<float> sparse_rows(std::size_t n, std::size_t cols, bool binary) {
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> rows(n * cols);
    for (float& x : rows) x = u(gen) < 0.12f ? (binary ? 1.0f : 0.2f + 0.8f * u(gen)) : 0.0f;
    return rows;
}

}  // namespace

TEST(SparseSamples, ListNonzerosFindsEveryNonzeroInOrder) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (std::size_t n : {0, 1, 63, 64, 65, 130, 784}) {
        std::vector<float> x(n);
        for (float& v : x) v = u(gen) < 0.2f ? u(gen) + 0.01f : 0.0f;
        if (n > 3) x[3] = -0.0f;  // a zero
        std::vector<uint32_t> want, got(n + 1, 7777u);
        for (std::size_t e = 0; e < n; ++e)
            if (x[e] != 0.0f) want.push_back(uint32_t(e));
        const std::size_t count = cpu::list_nonzeros(x.data(), n, got.data());
        ASSERT_EQ(count, want.size()) << n;
        EXPECT_EQ(std::vector<uint32_t>(got.begin(), got.begin() + long(count)), want) << n;
    }
}

TEST(SparseSamples, RowSumsAreTheProducts) {
    const std::size_t nv = 50, nh = 37;
    const ParamBuffer p = test::random_params({nv, nh}, 1.0, 3);
    std::mt19937 gen(2);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (std::size_t ones : {0, 1, 3, 4, 5, 9, 50}) {
        std::vector<float> binary(nv, 0.0f), real(nv, 0.0f);
        std::vector<uint32_t> rows;
        for (std::size_t i = 0; i < nv && rows.size() < ones; i += 1 + (i * 7) % 3) rows.push_back(uint32_t(i));
        for (uint32_t i : rows) {
            binary[i] = 1.0f;
            real[i] = 0.1f + u(gen);
        }
        std::vector<float> want(nh), got(nh);
        cpu::gemm(false, false, 1, nh, nv, binary.data(), p.W(), want.data());
        cpu::sum_rows(p.W(), nh, rows.data(), rows.size(), got.data(), nh);
        for (std::size_t j = 0; j < nh; ++j) EXPECT_NEAR(got[j], want[j], 1e-5f) << ones;
        cpu::gemm(false, false, 1, nh, nv, real.data(), p.W(), want.data());
        cpu::sum_scaled_rows(p.W(), nh, rows.data(), real.data(), rows.size(), got.data(), nh);
        for (std::size_t j = 0; j < nh; ++j) EXPECT_NEAR(got[j], want[j], 1e-5f) << ones;
    }
    std::vector<float> w(nv * nh), wt(nh * nv);
    std::iota(w.begin(), w.end(), 0.0f);
    cpu::transpose(nv, nh, w.data(), nh, wt.data(), nv);
    for (std::size_t i = 0; i < nv; ++i)
        for (std::size_t j = 0; j < nh; ++j) ASSERT_EQ(wt[j * nv + i], w[i * nh + j]);
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
