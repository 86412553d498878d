// The CPU engine against exact answers on tiny RBMs: free energies, the pseudo-
// likelihood shortcut, reconstruction cross-entropy, the update rule, and the CD/PCD
// gradient's expectation against the exact log-likelihood gradient by enumeration.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "engine/engine.hpp"
#include "model/exact.hpp"
#include "test_models.hpp"

using namespace rbm;

namespace {

std::vector<uint32_t> all_rows(std::size_t n) {
    std::vector<uint32_t> r(n);
    std::iota(r.begin(), r.end(), 0u);
    return r;
}

}  // namespace

TEST(CpuEngine, FreeEnergyMatchesExact) {
    const ParamBuffer p = test::random_params({9, 5}, 1.0, 1);
    auto engine = make_cpu_engine(p.shape);
    engine->set_params(p);
    const auto rows = test::random_binary_rows(300, 9, 2);
    double expected = 0;
    for (std::size_t r = 0; r < 300; ++r) expected += exact::free_energy(p, rows.data() + r * 9);
    EXPECT_NEAR(engine->free_energy_sum(rows.data(), 300), expected, 1e-4 * std::abs(expected));
}

// The per-step costs for one batch, with the PL bit fixed, against brute force.
void expect_costs_match(const std::vector<float>& rows, std::size_t nv, const ParamBuffer& p) {
    auto engine = make_cpu_engine(p.shape);
    engine->set_params(p);
    const std::size_t n = rows.size() / nv;
    engine->set_training_shard(test::dataset_of(rows, nv));
    StepSettings s;
    s.method = Method::cd;
    s.k = 1;
    s.batch = n;
    const auto order = all_rows(n);
    for (std::size_t bit = 0; bit < nv; ++bit) {
        StepSpec spec;
        spec.pl_bit = bit;
        engine->compute_gradient(order.data(), s, spec);
        const MetricSums m = engine->take_metric_sums();
        double pl = 0, xent = 0;
        for (std::size_t r = 0; r < n; ++r) {
            std::vector<float> x(rows.begin() + r * nv, rows.begin() + (r + 1) * nv);
            for (float& e : x) e = e >= 0.5f ? 1.0f : 0.0f;
            pl += double(nv) * exact::log_conditional_bit(p, x.data(), bit);
            const auto ph = exact::hidden_probs(p, rows.data() + r * nv);
            std::vector<float> phf(ph.begin(), ph.end());
            const auto pv = exact::visible_probs(p, phf.data());
            for (std::size_t i = 0; i < nv; ++i) {
                const double v = rows[r * nv + i];
                xent -= v * std::log(pv[i]) + (1 - v) * std::log(1 - pv[i]);
            }
        }
        EXPECT_EQ(m.examples, double(n));
        EXPECT_NEAR(m.pseudo_likelihood, pl, 1e-4 * std::abs(pl) + 1e-4) << "bit " << bit;
        EXPECT_NEAR(m.reconstruction_xent, xent, 1e-4 * std::abs(xent)) << "bit " << bit;
    }
}

TEST(CpuEngine, PseudoLikelihoodAndReconstructionMatchBruteForceOnBinaryData) {
    expect_costs_match(test::random_binary_rows(7, 8, 3), 8, test::random_params({8, 6}, 1.0, 4));
}

TEST(CpuEngine, PseudoLikelihoodRoundsRealValuedData) {
    std::vector<float> rows = test::random_binary_rows(7, 8, 5);
    for (std::size_t e = 0; e < rows.size(); ++e) rows[e] = rows[e] ? 0.5f + 0.05f * float(e % 9) : 0.4f * float(e % 3) / 2;
    expect_costs_match(rows, 8, test::random_params({8, 6}, 1.0, 6));
}

TEST(CpuEngine, UpdateAppliesMomentumAndWeightDecayToWeightsOnly) {
    const ParamBuffer p = test::random_params({3, 2}, 1.0, 8);
    auto engine = make_cpu_engine(p.shape);
    engine->set_params(p);
    ParamBuffer velocity = test::random_params({3, 2}, 0.1, 9);
    engine->set_velocity(velocity);
    engine->set_training_shard(test::dataset_of(test::random_binary_rows(4, 3, 10), 3));
    StepSettings s;
    s.method = Method::cd;
    s.batch = 4;
    const auto order = all_rows(4);
    engine->compute_gradient(order.data(), s, StepSpec{});
    const GradientView g = engine->gradient();
    std::vector<float> grad(g.data, g.data + g.count);
    const UpdateRule rule{0.1f, 0.5f, 0.01f};
    engine->apply_update(rule, 0.5f);
    ParamBuffer after(p.shape), v_after(p.shape);
    engine->get_params(after);
    engine->get_velocity(v_after);
    for (std::size_t e = 0; e < p.shape.total(); ++e) {
        const float decay = e < p.shape.weight_count() ? 0.01f * p.values[e] : 0.0f;
        const float v = 0.5f * velocity.values[e] + 0.1f * (0.5f * grad[e] - decay);
        EXPECT_FLOAT_EQ(v_after.values[e], v);
        EXPECT_FLOAT_EQ(after.values[e], p.values[e] + v);
    }
}

// With long chains the negative statistics reach the model's equilibrium, so the
// CD-k / PCD-k gradient's expectation is the exact log-likelihood gradient.
void expect_gradient_near_exact(Method method) {
    const RbmShape shape{6, 4};
    const ParamBuffer p = test::random_params(shape, 0.7, 12);
    const std::vector<float> data = test::random_binary_rows(8, 6, 13);
    const std::size_t copies = 512, n = 8 * copies;
    std::vector<float> batch;
    for (std::size_t c = 0; c < copies; ++c) batch.insert(batch.end(), data.begin(), data.end());
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    engine->set_training_shard(test::dataset_of(batch, 6));
    StepSettings s;
    s.method = method;
    s.k = 60;
    s.batch = n;
    s.chains = n;
    s.seed = 21;
    if (method == Method::pcd) engine->set_chains(std::vector<uint8_t>(n * shape.n_hidden, 0));
    const auto order = all_rows(n);
    // Average a few independent steps (different counters) to shrink the noise.
    const int repeats = 4;
    std::vector<double> mean(shape.total(), 0.0);
    for (int rep = 0; rep < repeats; ++rep) {
        StepSpec spec;
        spec.step = uint64_t(rep);
        spec.measure = false;
        engine->compute_gradient(order.data(), s, spec);
        const GradientView g = engine->gradient();
        for (std::size_t e = 0; e < g.count; ++e) mean[e] += g.data[e] / repeats;
    }
    const auto exact_grad = exact::log_likelihood_gradient(p, data.data(), 8);
    // Monte Carlo error of a mean of 4 x 4096 products of bits: about 0.5 / 128.
    double worst = 0;
    for (std::size_t e = 0; e < mean.size(); ++e) worst = std::max(worst, std::abs(mean[e] - exact_grad[e]));
    EXPECT_LT(worst, 0.03);
    // And the estimate is not trivially small: the test can fail.
    double norm = 0;
    for (double x : exact_grad) norm = std::max(norm, std::abs(x));
    EXPECT_GT(norm, 0.1);
}

TEST(CpuEngine, CdGradientWithLongChainsMatchesExactGradient) { expect_gradient_near_exact(Method::cd); }
TEST(CpuEngine, PcdGradientWithLongChainsMatchesExactGradient) { expect_gradient_near_exact(Method::pcd); }

TEST(CpuEngine, GibbsSamplerReachesTheModelDistribution) {
    const RbmShape shape{4, 3};
    const ParamBuffer p = test::random_params(shape, 1.2, 14);
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    const std::size_t n = 20000;
    std::vector<float> v(n * 4, 0.0f), mean(n * 4);
    engine->gibbs_visible(v.data(), mean.data(), n, 40, Stream::make(3, 0, Purpose::sample), 0);
    std::map<int, double> freq;
    for (std::size_t c = 0; c < n; ++c) {
        int code = 0;
        for (int i = 0; i < 4; ++i) code |= int(v[c * 4 + i]) << i;
        freq[code] += 1.0 / double(n);
    }
    const double log_z = exact::log_partition(p);
    for (int code = 0; code < 16; ++code) {
        float state[4];
        for (int i = 0; i < 4; ++i) state[i] = float((code >> i) & 1);
        const double prob = std::exp(-exact::free_energy(p, state) - log_z);
        EXPECT_NEAR(freq[code], prob, 4 * std::sqrt(prob * (1 - prob) / double(n)) + 1e-3) << "state " << code;
    }
}

TEST(CpuEngine, StepsAreDeterministicGivenTheCounter) {
    const ParamBuffer p = test::random_params({6, 4}, 1.0, 15);
    const auto rows = test::random_binary_rows(10, 6, 16);
    std::vector<float> first;
    for (int run = 0; run < 2; ++run) {
        auto engine = make_cpu_engine(p.shape);
        engine->set_params(p);
        engine->set_training_shard(test::dataset_of(rows, 6));
        engine->set_chains(std::vector<uint8_t>(5 * 4, 0));
        StepSettings s;
        s.batch = 10;
        s.chains = 5;
        s.k = 3;
        const auto order = all_rows(10);
        for (uint64_t step = 0; step < 3; ++step) {
            StepSpec spec;
            spec.step = step;
            engine->compute_gradient(order.data(), s, spec);
            engine->apply_update(UpdateRule{}, 1.0f);
        }
        ParamBuffer out(p.shape);
        engine->get_params(out);
        if (run == 0) first = out.values;
        else EXPECT_EQ(first, out.values);
    }
}

// rbm sample's sweeps draw hidden units from draw 0 and visible units from draw 1 of the
// sweep's step, element r * width + unit: the numbering the CUDA engine follows.
TEST(CpuEngine, GibbsSweepDrawsFromTheNamedStreams) {
    const RbmShape shape{7, 5};
    const ParamBuffer p = test::random_params(shape, 1.0, 17);
    const std::size_t n = 3;
    const uint64_t step = 41;
    const Stream stream = Stream::make(8, 0, Purpose::sample);
    std::vector<float> v = test::random_binary_rows(n, 7, 18), start = v, mean(n * 7);
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    engine->gibbs_visible(v.data(), mean.data(), n, 1, stream, step);
    int decided = 0;
    for (std::size_t r = 0; r < n; ++r) {
        const std::vector<double> ph = exact::hidden_probs(p, start.data() + r * 7);
        std::vector<float> h(5);
        bool near_tie = false;
        for (std::size_t j = 0; j < 5; ++j) {
            const double u = uniform_at(stream, step, 0, r * 5 + j);
            near_tie = near_tie || std::abs(u - ph[j]) < 1e-5;
            h[j] = u < ph[j] ? 1.0f : 0.0f;
        }
        if (near_tie) continue;  // the float sigmoid may decide otherwise
        ++decided;
        const std::vector<double> pv = exact::visible_probs(p, h.data());
        for (std::size_t i = 0; i < 7; ++i) {
            EXPECT_NEAR(mean[r * 7 + i], pv[i], 1e-6) << "row " << r << " unit " << i;
            EXPECT_EQ(v[r * 7 + i], uniform_at(stream, step, 1, r * 7 + i) < mean[r * 7 + i] ? 1.0f : 0.0f)
                << "row " << r << " unit " << i;
        }
    }
    EXPECT_EQ(decided, 3);
}

// The chains' visible samples a run writes every --sample-every epochs: p(v | h) of the
// persistent chains, and a draw 0 of the stream at the step given.
TEST(CpuEngine, ChainVisiblesArePOfVGivenTheChainsAndTheirDraws) {
    const RbmShape shape{6, 4};
    const ParamBuffer p = test::random_params(shape, 1.0, 19);
    std::vector<uint8_t> chains = {1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0};  // 3 chains of 4 hidden units
    auto engine = make_cpu_engine(shape);
    engine->set_params(p);
    engine->set_chains(chains);
    std::vector<float> mean(3 * 6), sample(3 * 6);
    const Stream stream = Stream::make(9, 0, Purpose::sample);
    engine->chain_visibles(mean.data(), sample.data(), stream, 77);
    for (std::size_t r = 0; r < 3; ++r) {
        const std::vector<float> h(chains.begin() + std::ptrdiff_t(r * 4), chains.begin() + std::ptrdiff_t(r * 4 + 4));
        const std::vector<double> pv = exact::visible_probs(p, h.data());
        for (std::size_t i = 0; i < 6; ++i) {
            EXPECT_NEAR(mean[r * 6 + i], pv[i], 1e-6) << "chain " << r << " unit " << i;
            EXPECT_EQ(sample[r * 6 + i], uniform_at(stream, 77, 0, r * 6 + i) < mean[r * 6 + i] ? 1.0f : 0.0f);
        }
    }
}
