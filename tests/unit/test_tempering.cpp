// Parallel tempering (--method pt) on the CPU engine: every level samples its own tempered
// distribution exactly (checked against enumeration), the swaps keep it so, and the
// model's level is PCD's: without tempered levels PT is PCD bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "engine/cpu_kernels.hpp"
#include "engine/cpu_tempering.hpp"
#include "engine/engine.hpp"
#include "test_models.hpp"
#include "util/check.hpp"

using namespace rbm;

namespace {

// p_beta(h) of every hidden state h (index bit j = unit j), by enumeration:
// log p~(h) = beta c'h + sum_i softplus(beta (b_i + W_i h)).
std::vector<double> exact_hidden_marginal(const ParamBuffer& p, double beta) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden, states = std::size_t(1) << nh;
    std::vector<double> logp(states);
    for (std::size_t s = 0; s < states; ++s) {
        double l = 0;
        for (std::size_t j = 0; j < nh; ++j)
            if (s >> j & 1) l += beta * p.hbias()[j];
        for (std::size_t i = 0; i < nv; ++i) {
            double a = p.vbias()[i];
            for (std::size_t j = 0; j < nh; ++j)
                if (s >> j & 1) a += p.W()[i * nh + j];
            l += std::log1p(std::exp(beta * a));
        }
        logp[s] = l;
    }
    const double top = *std::max_element(logp.begin(), logp.end());
    double z = 0;
    for (double& l : logp) z += (l = std::exp(l - top));
    for (double& l : logp) l /= z;
    return logp;
}

// Adds the hidden states of `chains` rows [n, nh] to a histogram over 2^nh states.
void count_states(const std::vector<uint8_t>& chains, std::size_t nh, std::vector<double>& histogram) {
    for (std::size_t r = 0; r < chains.size() / nh; ++r) {
        std::size_t s = 0;
        for (std::size_t j = 0; j < nh; ++j) s |= std::size_t(chains[r * nh + j]) << j;
        histogram[s] += 1;
    }
}

double total_variation(const std::vector<double>& counts, const std::vector<double>& p) {
    const double n = std::accumulate(counts.begin(), counts.end(), 0.0);
    double tv = 0;
    for (std::size_t s = 0; s < p.size(); ++s) tv += std::abs(counts[s] / n - p[s]);
    return tv / 2;
}

struct Fixture {
    std::unique_ptr<Engine> engine;
    StepSettings settings;
    std::vector<uint32_t> rows;
};

Fixture make(const ParamBuffer& p, Method method, std::vector<float> betas, std::size_t chains) {
    Fixture f{make_cpu_engine(p.shape), {}, {}};
    f.engine->set_params(p);
    f.engine->set_velocity(ParamBuffer(p.shape));
    f.engine->set_training_shard(test::dataset_of(test::random_binary_rows(8, p.shape.n_visible, 5), p.shape.n_visible));
    f.settings = {.method = method, .k = 1, .batch = 4, .chains = chains, .seed = 17, .rank = 1, .betas = betas};
    f.engine->set_chains(std::vector<uint8_t>(chains * p.shape.n_hidden, 0));
    f.engine->set_tempered_chains(std::vector<uint8_t>(betas.size() * chains * p.shape.n_hidden, 0));
    f.rows = {0, 3, 5, 6};
    return f;
}

}  // namespace

// With the parameters held fixed, the chains of every level must settle into that level's
// distribution p_beta(h). Swaps with a wrong acceptance rule (always, never-with-the-wrong-
// sign, energies mixed up) mix the levels' distributions and fail this.
TEST(Tempering, EveryLevelSamplesItsTemperedDistribution) {
    const RbmShape shape{6, 4};
    const ParamBuffer p = test::random_params(shape, 1.6, 21);
    const std::vector<float> betas = {0.7f, 0.45f, 0.2f};
    Fixture f = make(p, Method::pt, betas, 1000);
    const std::size_t nh = shape.n_hidden, levels = betas.size() + 1;
    std::vector<std::vector<double>> counts(levels, std::vector<double>(std::size_t(1) << nh, 0.0));
    for (uint64_t step = 0; step < 450; ++step) {
        f.engine->compute_gradient(f.rows.data(), f.settings, StepSpec{.step = step, .measure = false});
        if (step < 50) continue;
        count_states(f.engine->get_chains(), nh, counts[0]);
        const std::vector<uint8_t> tempered = f.engine->get_tempered_chains();
        const std::size_t level_bytes = f.settings.chains * nh;
        for (std::size_t m = 1; m < levels; ++m)
            count_states({tempered.begin() + long((m - 1) * level_bytes), tempered.begin() + long(m * level_bytes)}, nh,
                         counts[m]);
    }
    for (std::size_t m = 0; m < levels; ++m) {
        const double beta = m ? betas[m - 1] : 1.0;
        const double tv = total_variation(counts[m], exact_hidden_marginal(p, beta));
        SCOPED_TRACE(testing::Message() << "level " << m << ", beta " << beta);
        EXPECT_LT(tv, 0.005);  // sampling noise here ~0.002; a level 0 energy from the wrong products gives 0.007

        // The levels' distributions differ far more than the tolerance: a swap that mixed
        // them up would show.
        if (m) {
            EXPECT_GT(total_variation(counts[m], exact_hidden_marginal(p, 1.0)), 0.1);
        }
    }
    const Engine::SwapCounts swaps = f.engine->take_swap_counts();
    ASSERT_EQ(swaps.proposed.size(), levels - 1);
    for (std::size_t m = 0; m + 1 < levels; ++m) {
        EXPECT_EQ(swaps.proposed[m], 225u * f.settings.chains) << "pair " << m << ": one every other step";
        EXPECT_GT(swaps.accepted[m], 0u);
        EXPECT_LT(swaps.accepted[m], swaps.proposed[m]);
    }
    EXPECT_EQ(f.engine->take_swap_counts().proposed, std::vector<uint64_t>(levels - 1, 0)) << "taking resets them";
}

// The gradient and the model's chains come from level 0 as in PCD: without tempered
// levels PT is PCD bit for bit, and with them the first step's gradient is PCD's.
TEST(Tempering, WithoutTemperedLevelsItIsPcd) {
    const RbmShape shape{9, 7};
    const ParamBuffer p = test::random_params(shape, 0.8, 4);
    Fixture pcd = make(p, Method::pcd, {}, 6), pt = make(p, Method::pt, {}, 6), tempered = make(p, Method::pt, {0.5f}, 6);
    const UpdateRule rule{.learning_rate = 0.05f, .momentum = 0.5f};
    for (uint64_t step = 0; step < 6; ++step) {
        for (Fixture* f : {&pcd, &pt, &tempered}) f->engine->compute_gradient(f->rows.data(), f->settings, {.step = step});
        const GradientView a = pcd.engine->gradient(), b = pt.engine->gradient(), c = tempered.engine->gradient();
        ASSERT_EQ(std::vector<float>(a.data, a.data + a.count), std::vector<float>(b.data, b.data + b.count));
        if (step == 0) {
            ASSERT_EQ(std::vector<float>(a.data, a.data + a.count), std::vector<float>(c.data, c.data + c.count));
        }
        for (Fixture* f : {&pcd, &pt, &tempered}) f->engine->apply_update(rule, 1.0f);
    }
    EXPECT_EQ(pcd.engine->get_chains(), pt.engine->get_chains());
    EXPECT_NE(tempered.engine->get_chains(), std::vector<uint8_t>(6 * shape.n_hidden, 0)) << "the chains moved";
}

// A level's draws depend on the seed, rank, level and step only: the same run twice, or
// on another thread count, gives the same tempered chains (here, where no probability
// lies within rounding of its draw: dyadic weights keep every pre-activation exact).
TEST(Tempering, TemperedLevelsAreDeterministicAcrossThreadCounts) {
    const RbmShape shape{12, 10};
    const ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 9);
    std::vector<std::vector<uint8_t>> runs;
    for (int threads : {1, 2, 1}) {
        cpu::set_threads(threads);
        Fixture f = make(p, Method::pt, {0.75f, 0.5f, 0.25f}, 5);
        for (uint64_t step = 0; step < 20; ++step)
            f.engine->compute_gradient(f.rows.data(), f.settings, {.step = step, .measure = false});
        std::vector<uint8_t> all = f.engine->get_chains();
        const std::vector<uint8_t> tempered = f.engine->get_tempered_chains();
        all.insert(all.end(), tempered.begin(), tempered.end());
        runs.push_back(all);
    }
    cpu::set_threads(1);
    EXPECT_EQ(runs[0], runs[1]);
    EXPECT_EQ(runs[0], runs[2]);
}

// At stationarity the states two neighbouring levels propose to swap are independent draws
// of their joint distributions, so each pair's acceptance rate is
//   sum over x, y of pi_a(x) pi_b(y) min(1, exp((beta_a - beta_b)(E(x) - E(y))))
// over the joint states (v, h), enumerable at 6 x 4. A level's energy from the wrong
// visible rows (the batch's instead of the chains') or the wrong products moves it.
TEST(Tempering, SwapRatesMatchTheirStationaryValues) {
    const RbmShape shape{6, 4};
    const ParamBuffer p = test::random_params(shape, 1.6, 21);
    const std::vector<float> betas = {0.7f, 0.45f};
    Fixture f = make(p, Method::pt, betas, 1000);
    for (uint64_t step = 0; step < 50; ++step)
        f.engine->compute_gradient(f.rows.data(), f.settings, StepSpec{.step = step, .measure = false});
    f.engine->take_swap_counts();
    for (uint64_t step = 50; step < 450; ++step)
        f.engine->compute_gradient(f.rows.data(), f.settings, StepSpec{.step = step, .measure = false});
    const Engine::SwapCounts swaps = f.engine->take_swap_counts();
    // E(v, h) of every joint state, v in the low bits.
    const std::size_t nv = shape.n_visible, nh = shape.n_hidden, states = std::size_t(1) << (nv + nh);
    std::vector<double> energy(states);
    for (std::size_t x = 0; x < states; ++x) {
        double e = 0;
        for (std::size_t i = 0; i < nv; ++i) {
            if (!(x >> i & 1)) continue;
            e -= p.vbias()[i];
            for (std::size_t j = 0; j < nh; ++j)
                if (x >> (nv + j) & 1) e -= p.W()[i * nh + j];
        }
        for (std::size_t j = 0; j < nh; ++j)
            if (x >> (nv + j) & 1) e -= p.hbias()[j];
        energy[x] = e;
    }
    auto joint = [&](double beta) {
        std::vector<double> pi(states);
        double z = 0;
        for (std::size_t x = 0; x < states; ++x) z += (pi[x] = std::exp(-beta * energy[x]));
        for (double& q : pi) q /= z;
        return pi;
    };
    const std::vector<double> level_beta = {1.0, betas[0], betas[1]};
    for (std::size_t m = 0; m + 1 < level_beta.size(); ++m) {
        const std::vector<double> pa = joint(level_beta[m]), pb = joint(level_beta[m + 1]);
        const double d_beta = level_beta[m] - level_beta[m + 1];
        double rate = 0;
        for (std::size_t x = 0; x < states; ++x)
            for (std::size_t y = 0; y < states; ++y)
                rate += pa[x] * pb[y] * std::min(1.0, std::exp(d_beta * (energy[x] - energy[y])));
        const double measured = double(swaps.accepted[m]) / double(swaps.proposed[m]);
        // 200,000 proposals: a standard error near 0.001, more with the chains' correlation.
        EXPECT_NEAR(measured, rate, 0.006) << "pair " << m;
    }
}

// Products of binary samples are sums of W's (or W''s) rows when the samples are sparse,
// products through sgemm otherwise: dyadic weights make both exact, so the chains must
// agree bit for bit, and across a change of the parameters (W' is cached per change).
TEST(Tempering, SparseAndDenseProductsAgree) {
    const RbmShape shape{40, 30};
    auto sparse_model = [&](unsigned seed) {  // negative biases: mostly zeros, the row sums' case
        ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), seed);
        for (std::size_t i = 0; i < shape.n_visible; ++i) p.vbias()[i] = -2.0f;
        for (std::size_t j = 0; j < shape.n_hidden; ++j) p.hbias()[j] = -2.0f;
        return p;
    };
    const ParamBuffer first = sparse_model(3), later = sparse_model(4);
    // Chains driven by the same draws tend to coalesce, so states are compared at every
    // step, not only at the end.
    std::vector<std::vector<uint8_t>> runs(2);
    for (bool sparse : {true, false}) {
        const bool was = cpu::use_sparse_samples(sparse);
        Fixture f = make(first, Method::pt, {0.75f, 0.5f}, 8);
        // The model's chains start dense (every unit on: its first sweep takes sgemm and
        // leaves the engine without W'), the tempered ones sparse but not empty, so the
        // first step's tempered products must transpose W themselves.
        f.engine->set_chains(std::vector<uint8_t>(8 * shape.n_hidden, 1));
        std::vector<uint8_t> sparse_start(2 * 8 * shape.n_hidden, 0);
        for (std::size_t e = 0; e < sparse_start.size(); e += 7) sparse_start[e] = 1;
        f.engine->set_tempered_chains(sparse_start);
        for (uint64_t step = 0; step < 30; ++step) {
            if (step == 15) f.engine->set_params(later);
            f.engine->compute_gradient(f.rows.data(), f.settings, {.step = step, .measure = false});
            for (const std::vector<uint8_t>& state : {f.engine->get_chains(), f.engine->get_tempered_chains()})
                runs[sparse].insert(runs[sparse].end(), state.begin(), state.end());
        }
        cpu::use_sparse_samples(was);
    }
    EXPECT_EQ(runs[0], runs[1]);
}

// The engine hands its own W' to the tempered levels when its sparse sweeps made one this
// step; otherwise they transpose W themselves, once per change of the parameters. Both
// must give the same chains, before and after a change.
TEST(Tempering, OwnTransposeEqualsTheEnginesAcrossAParameterChange) {
    const RbmShape shape{40, 30};
    const std::size_t nv = shape.n_visible, nh = shape.n_hidden, n = 8;
    auto sparse_model = [&](unsigned seed) {
        ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), seed);
        for (std::size_t i = 0; i < nv; ++i) p.vbias()[i] = -2.0f;
        for (std::size_t j = 0; j < nh; ++j) p.hbias()[j] = -2.0f;
        return p;
    };
    const std::vector<ParamBuffer> models = {sparse_model(5), sparse_model(6)};
    const StepSettings s{.method = Method::pt, .k = 2, .batch = 4, .chains = n, .seed = 3, .betas = {0.75f, 0.5f}};
    const std::vector<float> model_v = test::random_binary_rows(n, nv, 8);
    std::vector<float> own_h = test::random_binary_rows(n, nh, 9), given_h = own_h;
    cpu::Tempering own, given;
    own.set_chains(std::vector<uint8_t>(2 * n * nh, 0));
    given.set_chains(std::vector<uint8_t>(2 * n * nh, 0));
    std::vector<float> wt(nh * nv);
    for (uint64_t step = 0; step < 30; ++step) {
        const uint64_t version = step < 15 ? 1 : 2;
        const ParamBuffer& p = models[version - 1];
        for (std::size_t i = 0; i < nv; ++i)
            for (std::size_t j = 0; j < nh; ++j) wt[j * nv + i] = p.W()[i * nh + j];
        own.advance(p, version, nullptr, model_v.data(), own_h.data(), s, {.step = step});
        given.advance(p, version, wt.data(), model_v.data(), given_h.data(), s, {.step = step});
        ASSERT_EQ(own.get_chains(), given.get_chains()) << "step " << step;
        ASSERT_EQ(own_h, given_h) << "step " << step;
    }
}

TEST(Tempering, RefusesChainsThatDoNotFit) {
    const RbmShape shape{6, 4};
    Fixture f = make(test::random_params(shape, 1.0, 3), Method::pt, {0.5f}, 3);
    f.settings.betas = {0.5f, 0.25f};  // two tempered levels, chains for one
    try {
        f.engine->compute_gradient(f.rows.data(), f.settings, {});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("parallel tempering needs 2 tempered levels of 3 chains"), std::string::npos)
            << e.what();
    }
}
