// The reference math checked against itself by independent routes: brute-force sums
// over both layers, closed forms, finite differences, and Philox's known answer.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "model/exact.hpp"
#include "model/init.hpp"
#include "random/shuffle.hpp"
#include "random/streams.hpp"
#include "test_models.hpp"

using namespace rbm;

TEST(Philox, KnownAnswerCounterZeroKeyZero) {
    const Stream s{0, 0};
    const auto r = s.block(0, 0, 0);
    EXPECT_EQ(r.v[0], 0x6627e8d5u);
    EXPECT_EQ(r.v[1], 0xe169c58du);
    EXPECT_EQ(r.v[2], 0xbc57ac4cu);
    EXPECT_EQ(r.v[3], 0x9b00dbd8u);
}

TEST(Philox, StreamsDifferByPurposeRankAndStep) {
    const Stream a = Stream::make(1, 0, Purpose::gibbs), b = Stream::make(1, 1, Purpose::gibbs),
                 c = Stream::make(1, 0, Purpose::sample);
    EXPECT_NE(uniform_at(a, 0, 0, 0), uniform_at(b, 0, 0, 0));
    EXPECT_NE(uniform_at(a, 0, 0, 0), uniform_at(c, 0, 0, 0));
    EXPECT_NE(uniform_at(a, 0, 0, 0), uniform_at(a, 1, 0, 0));
    EXPECT_EQ(uniform_at(a, 7, 3, 11), uniform_at(a, 7, 3, 11));
    for (uint64_t e = 0; e < 1000; ++e) {
        const float u = uniform_at(a, 5, 2, e);
        ASSERT_GE(u, 0.0f);
        ASSERT_LT(u, 1.0f);
    }
}

// Z by summing exp(-E(v, h)) over every joint state.
static double brute_log_z(const ParamBuffer& p) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    double z = 0;
    for (unsigned long vb = 0; vb < (1ul << nv); ++vb)
        for (unsigned long hb = 0; hb < (1ul << nh); ++hb) {
            double minus_e = 0;
            for (std::size_t i = 0; i < nv; ++i) minus_e += ((vb >> i) & 1) * p.vbias()[i];
            for (std::size_t j = 0; j < nh; ++j) minus_e += ((hb >> j) & 1) * p.hbias()[j];
            for (std::size_t i = 0; i < nv; ++i)
                for (std::size_t j = 0; j < nh; ++j)
                    minus_e += ((vb >> i) & 1) * ((hb >> j) & 1) * p.W()[i * nh + j];
            z += std::exp(minus_e);
        }
    return std::log(z);
}

TEST(ExactModel, LogPartitionMatchesJointEnumerationBothOrientations) {
    for (auto shape : {RbmShape{5, 3}, RbmShape{3, 6}, RbmShape{4, 4}}) {
        const ParamBuffer p = test::random_params(shape, 1.5, 7);
        EXPECT_NEAR(exact::log_partition(p), brute_log_z(p), 1e-9) << shape.n_visible << "x" << shape.n_hidden;
    }
}

TEST(ExactModel, ZeroWeightsGiveClosedFormLogZ) {
    ParamBuffer p = test::random_params({7, 5}, 1.0, 3);
    std::fill(p.W(), p.W() + p.shape.weight_count(), 0.0f);
    double expected = 0;
    for (std::size_t i = 0; i < 7; ++i) expected += exact::softplus(p.vbias()[i]);
    for (std::size_t j = 0; j < 5; ++j) expected += exact::softplus(p.hbias()[j]);
    EXPECT_NEAR(exact::log_partition(p), expected, 1e-10);
}

TEST(ExactModel, ConditionalsMatchRatiosOfJointProbabilities) {
    const ParamBuffer p = test::random_params({4, 3}, 1.0, 11);
    const std::vector<float> v = {1, 0, 1, 1};
    const auto ph = exact::hidden_probs(p, v.data());
    for (std::size_t j = 0; j < 3; ++j) {
        double a = p.hbias()[j];
        for (std::size_t i = 0; i < 4; ++i) a += v[i] * p.W()[i * 3 + j];
        EXPECT_NEAR(ph[j], 1.0 / (1.0 + std::exp(-a)), 1e-12);
    }
    // log p(v_i | v_-i) from free energies equals the direct ratio of marginals.
    std::vector<float> flipped = v;
    flipped[2] = 0;
    const double direct = -exact::free_energy(p, v.data()) -
                          std::log(std::exp(-exact::free_energy(p, v.data())) +
                                   std::exp(-exact::free_energy(p, flipped.data())));
    EXPECT_NEAR(exact::log_conditional_bit(p, v.data(), 2), direct, 1e-12);
}

TEST(ExactModel, GradientMatchesFiniteDifferences) {
    ParamBuffer p = test::random_params({5, 4}, 0.8, 5);
    const std::vector<float> data = test::random_binary_rows(6, 5, 9);
    const auto grad = exact::log_likelihood_gradient(p, data.data(), 6);
    for (std::size_t k = 0; k < p.shape.total(); k += 3) {
        const float saved = p.values[k];
        const double h = 1e-3;
        p.values[k] = float(saved + h);
        const double up = exact::mean_log_likelihood(p, data.data(), 6);
        p.values[k] = float(saved - h);
        const double down = exact::mean_log_likelihood(p, data.data(), 6);
        p.values[k] = saved;
        const double step = double(float(saved + h)) - double(float(saved - h));
        EXPECT_NEAR(grad[k], (up - down) / step, 2e-3) << "parameter " << k;
    }
}

TEST(Init, TutorialBoundsAndZeroBiases) {
    const ParamBuffer p = initial_params({784, 500}, 123);
    const float bound = 4.0f * std::sqrt(6.0f / 1284.0f);
    float lo = 1e9f, hi = -1e9f;
    for (std::size_t e = 0; e < p.shape.weight_count(); ++e) {
        lo = std::min(lo, p.W()[e]);
        hi = std::max(hi, p.W()[e]);
    }
    EXPECT_GE(lo, -bound);
    EXPECT_LE(hi, bound);
    EXPECT_LT(lo, -0.99f * bound);
    EXPECT_GT(hi, 0.99f * bound);
    for (std::size_t i = 0; i < 784; ++i) EXPECT_EQ(p.vbias()[i], 0.0f);
    EXPECT_EQ(initial_params({784, 500}, 123).values, p.values);
}

TEST(Shuffle, IsAReproduciblePermutationThatVariesByEpochAndRank) {
    const auto a = epoch_order(1000, 1, 0, 0);
    std::vector<uint32_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (uint32_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
    EXPECT_EQ(a, epoch_order(1000, 1, 0, 0));
    EXPECT_NE(a, epoch_order(1000, 1, 0, 1));
    EXPECT_NE(a, epoch_order(1000, 1, 1, 0));
    EXPECT_NE(a, epoch_order(1000, 2, 0, 0));
}

TEST(Init, WeightsFollowTheSeedAndFillTheRangeUniformly) {
    const ParamBuffer a = initial_params({784, 500}, 1), b = initial_params({784, 500}, 2);
    EXPECT_NE(a.values, b.values);
    const float bound = 4.0f * std::sqrt(6.0f / 1284.0f);
    std::size_t inner_half = 0, positive = 0;
    for (std::size_t e = 0; e < a.shape.weight_count(); ++e) {
        inner_half += std::abs(a.W()[e]) < bound / 2;
        positive += a.W()[e] > 0;
    }
    const double n = double(a.shape.weight_count());  // 392,000: 5 sigma is 0.4% of n
    EXPECT_NEAR(double(inner_half) / n, 0.5, 0.004);
    EXPECT_NEAR(double(positive) / n, 0.5, 0.004);
}

// Every order of 4 rows comes out equally often across epochs: a Fisher-Yates shuffle, not
// Sattolo's (cyclic orders only) or one with a biased index.
TEST(Shuffle, EveryOrderIsEquallyLikely) {
    std::map<std::vector<uint32_t>, int> seen;
    const int epochs = 24000;
    for (int e = 0; e < epochs; ++e) ++seen[epoch_order(4, 7, 0, uint64_t(e))];
    EXPECT_EQ(seen.size(), 24u);
    for (const auto& [order, count] : seen) EXPECT_NEAR(count, epochs / 24, 5 * 31) << ::testing::PrintToString(order);
}
