// AIS, RAISE and the evaluation measures against enumeration and closed forms.
#include <gtest/gtest.h>

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/cpu_kernels.hpp"
#include "eval/ais.hpp"
#include "eval/metrics.hpp"
#include "eval/series.hpp"
#include "model/exact.hpp"
#include "test_models.hpp"
#include "util/check.hpp"

using namespace rbm;

namespace {

// Exact samples of v: h from p(h) by enumerating the hidden layer, then v ~ p(v | h).
std::vector<float> exact_samples(const ParamBuffer& p, std::size_t n, unsigned seed) {
    const std::size_t nv = p.shape.n_visible, nh = p.shape.n_hidden;
    std::vector<double> log_ph(std::size_t(1) << nh);
    std::vector<float> h(nh);
    for (std::size_t s = 0; s < log_ph.size(); ++s) {
        for (std::size_t j = 0; j < nh; ++j) h[j] = float((s >> j) & 1);
        double t = 0;
        for (std::size_t j = 0; j < nh; ++j) t += h[j] * p.hbias()[j];
        for (double q : exact::visible_probs(p, h.data())) t -= std::log1p(-q);  // softplus(pre) = -log(1 - σ(pre))
        log_ph[s] = t;
    }
    const double top = *std::max_element(log_ph.begin(), log_ph.end());
    std::vector<double> weights(log_ph.size());
    for (std::size_t s = 0; s < weights.size(); ++s) weights[s] = std::exp(log_ph[s] - top);
    std::mt19937 gen(seed);
    std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
    std::uniform_real_distribution<double> u(0, 1);
    std::vector<float> rows(n * nv);
    for (std::size_t r = 0; r < n; ++r) {
        const std::size_t s = pick(gen);
        for (std::size_t j = 0; j < nh; ++j) h[j] = float((s >> j) & 1);
        const std::vector<double> pv = exact::visible_probs(p, h.data());
        for (std::size_t i = 0; i < nv; ++i) rows[r * nv + i] = u(gen) < pv[i] ? 1.0f : 0.0f;
    }
    return rows;
}

eval::BaseModel base_from_rows(const std::vector<float>& rows, std::size_t nv, std::size_t nh) {
    const std::size_t n = rows.size() / nv;
    std::vector<double> sums(nv, 0.0);
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < nv; ++i) sums[i] += rows[r * nv + i];
    return eval::base_rate_model(sums, n, nh);
}

struct Case {
    RbmShape shape;
    double scale;
};

std::string name(const Case& c) {
    return std::to_string(c.shape.n_visible) + "x" + std::to_string(c.shape.n_hidden) + " scale " +
           std::to_string(c.scale);
}

const std::vector<Case> kCases = {
    {{10, 6}, 0.1}, {{10, 6}, 1.0}, {{10, 6}, 3.0},  {{6, 12}, 0.1}, {{6, 12}, 1.0},
    {{6, 12}, 3.0}, {{20, 15}, 0.1}, {{20, 15}, 1.0}, {{20, 15}, 3.0}};

}  // namespace

TEST(BetaSchedule, DefaultIsSalakhutdinovMurray) {
    const std::vector<double> b = eval::beta_schedule();
    ASSERT_EQ(b.size(), 14501u);
    EXPECT_EQ(b.front(), 0.0);
    EXPECT_EQ(b.back(), 1.0);
    EXPECT_NEAR(b[500], 0.5, 1e-15);
    EXPECT_NEAR(b[4500], 0.9, 1e-15);
    EXPECT_NEAR(b[1] - b[0], 1e-3, 1e-12);
    EXPECT_NEAR(b[501] - b[500], 1e-4, 1e-12);
    EXPECT_NEAR(b[14500] - b[14499], 1e-5, 1e-12);
    for (std::size_t k = 1; k < b.size(); ++k) ASSERT_GT(b[k], b[k - 1]);
}

TEST(BetaSchedule, ShortSchedulesKeepTheShape) {
    for (std::size_t n : {3u, 4u, 10u, 100u, 1450u, 2999u}) {
        const std::vector<double> b = eval::beta_schedule(n);
        ASSERT_EQ(b.size(), n + 1);
        EXPECT_EQ(b.front(), 0.0);
        EXPECT_EQ(b.back(), 1.0);
        for (std::size_t k = 1; k < b.size(); ++k) ASSERT_GT(b[k], b[k - 1]) << n;
        EXPECT_NE(std::find(b.begin(), b.end(), 0.5), b.end()) << n;
    }
    EXPECT_THROW(eval::beta_schedule(2), Error);
}

TEST(BaseModel, LogPartitionMatchesEnumeration) {
    ParamBuffer p({7, 5});
    const eval::BaseModel base = eval::base_model_from_biases({-2, -1, 0, 0.5, 1, 3, -0.3}, 5);
    for (std::size_t i = 0; i < 7; ++i) p.vbias()[i] = float(base.vbias[i]);
    EXPECT_NEAR(base.log_z, exact::log_partition(p), 1e-5);
}

TEST(BaseModel, SmoothedBaseRates) {
    // column 0 always on, column 1 never, column 2 half: p = (count + 1) / (n + 2)
    const eval::BaseModel m = eval::base_rate_model({10, 0, 5}, 10, 3, 1.0);
    EXPECT_NEAR(m.vbias[0], std::log(11.0 / 1.0), 1e-12);
    EXPECT_NEAR(m.vbias[1], std::log(1.0 / 11.0), 1e-12);
    EXPECT_NEAR(m.vbias[2], 0.0, 1e-12);
}

// W = 0: log Z = sum_i softplus(b_i) + sum_j softplus(c_j) in closed form.
TEST(Ais, ZeroWeightsClosedForm) {
    ParamBuffer p = test::random_params({12, 9}, 1.5, 11);
    std::fill(p.W(), p.W() + p.shape.weight_count(), 0.0f);
    double closed = 0;
    for (std::size_t i = 0; i < 12; ++i) closed += exact::softplus(p.vbias()[i]);
    for (std::size_t j = 0; j < 9; ++j) closed += exact::softplus(p.hbias()[j]);
    EXPECT_NEAR(exact::log_partition(p), closed, 1e-9);
    EXPECT_NEAR(eval::log_partition_enumerated(p), closed, 1e-9);

    const std::vector<double> betas = eval::beta_schedule(1000);
    // Base = the model's own visible biases: every run's weight is the same number, exactly.
    std::vector<double> b(p.vbias(), p.vbias() + 12);
    const eval::BaseModel same = eval::base_model_from_biases(b, 9);
    const auto w_same = eval::forward_ais_log_weights(p, same, betas, 5, eval::chain_ids(0, 0, 50));
    const eval::WeightSummary s_same = eval::summarize_log_weights(w_same);
    EXPECT_NEAR(same.log_z + s_same.log_mean, closed, 1e-9);
    EXPECT_NEAR(s_same.ess, 50.0, 1e-9);

    // A uniform base: a real importance-sampling problem with the same answer.
    const eval::BaseModel flat = eval::base_model_from_biases(std::vector<double>(12, 0.0), 9);
    const auto w = eval::forward_ais_log_weights(p, flat, betas, 5, eval::chain_ids(0, 0, 100));
    const eval::WeightSummary s = eval::summarize_log_weights(w);
    const double est = flat.log_z + s.log_mean;
    EXPECT_NEAR(est, closed, 0.2);
    EXPECT_LE(flat.log_z + s.log_lower, closed);
    EXPECT_GE(flat.log_z + s.log_upper, closed);
}

TEST(Ais, MatchesExactLogPartitionAcrossShapesAndScales) {
    const std::vector<double> betas = eval::beta_schedule(4000);
    for (const Case& c : kCases) {
        const ParamBuffer p = test::random_params(c.shape, c.scale, 17);
        const double exact_z = exact::log_partition(p);
        const eval::BaseModel base = base_from_rows(exact_samples(p, 500, 3), c.shape.n_visible, c.shape.n_hidden);
        const auto w = eval::forward_ais_log_weights(p, base, betas, 21, eval::chain_ids(0, 0, 100));
        const eval::WeightSummary s = eval::summarize_log_weights(w);
        const double est = base.log_z + s.log_mean;
        EXPECT_NEAR(est, exact_z, 0.2) << name(c);
        EXPECT_LE(base.log_z + s.log_lower, exact_z) << name(c);
        EXPECT_GE(base.log_z + s.log_upper, exact_z) << name(c);
        EXPECT_GT(s.ess, 1.0) << name(c);
    }
}

// RAISE from exact samples: a stochastic lower bound on the log-likelihood, within its
// +-3 s.e. of the exact value for these small models.
TEST(Raise, ConservativeAndCloseToExact) {
    const std::vector<double> betas = eval::beta_schedule(4000);
    for (const Case& c : kCases) {
        const ParamBuffer p = test::random_params(c.shape, c.scale, 17);
        const std::size_t nv = c.shape.n_visible, n = 60;
        const std::vector<float> rows = exact_samples(p, n, 5);
        const eval::BaseModel base = base_from_rows(exact_samples(p, 500, 3), nv, c.shape.n_hidden);
        const double exact_ll = exact::mean_log_likelihood(p, rows.data(), n);
        const std::vector<double> lz = eval::reverse_ais_log_z(p, base, betas, 21, eval::chain_ids(0, 0, n), rows.data());
        const std::vector<double> fe = eval::free_energies(p, rows.data(), n);
        double ll = 0, mean_lz = 0;
        for (std::size_t r = 0; r < n; ++r) {
            ll += (-fe[r] - lz[r]) / double(n);
            mean_lz += lz[r] / double(n);
        }
        double ss = 0;
        for (double z : lz) ss += (z - mean_lz) * (z - mean_lz);
        const double se = std::sqrt(ss / double(n - 1) / double(n));
        EXPECT_LE(ll, exact_ll + 3 * se + 1e-9) << name(c);       // conservative
        EXPECT_GE(ll + 3 * se, exact_ll) << name(c);               // exact within its bounds
        EXPECT_NEAR(ll, exact_ll, 0.2 + 3 * se) << name(c);
    }
}

// A chain's weight depends on its key alone, not on which chains share its batch.
// A chain's draws never depend on its batch-mates; its arithmetic does only through the
// rounding of the batch's sgemm (OpenBLAS's Haswell and Zen kernels round a row with its
// place among the rows), so other batchings agree to rounding, and the same batching is
// bitwise the same for any thread count (whole batches per thread, rbm eval's threads).
TEST(Ais, RunsDoNotDependOnBatchOrSplit) {
    const ParamBuffer p = test::random_params({20, 15}, 1.0, 4);
    const eval::BaseModel base = eval::base_model_from_biases(std::vector<double>(20, -0.5), 15);
    const std::vector<double> betas = eval::beta_schedule(300);
    const auto ids = eval::chain_ids(1, 0, 40);
    const int blas_threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    const auto whole = eval::forward_ais_log_weights(p, base, betas, 9, ids);
    const auto small_one_thread = eval::forward_ais_log_weights(p, base, betas, 9, ids, 7);
    openblas_set_num_threads(3);
    const auto small_three_threads = eval::forward_ais_log_weights(p, base, betas, 9, ids, 7);
    EXPECT_EQ(openblas_get_num_threads(), 3) << "the thread count is restored after the batches";
    openblas_set_num_threads(blas_threads);
    EXPECT_EQ(small_one_thread, small_three_threads);
    auto split = eval::forward_ais_log_weights(p, base, betas, 9, eval::chain_ids(1, 0, 15));
    const auto rest = eval::forward_ais_log_weights(p, base, betas, 9, eval::chain_ids(1, 15, 25));
    split.insert(split.end(), rest.begin(), rest.end());
    ASSERT_EQ(whole.size(), 40u);
    // Float products that round differently move a log-weight by ~1e-7; at most one run may
    // have diverged (a probability within rounding of its draw).
    std::size_t far_small = 0, far_split = 0;
    for (std::size_t r = 0; r < 40; ++r) {
        far_small += std::abs(whole[r] - small_one_thread[r]) > 1e-5 * (1 + std::abs(whole[r]));
        far_split += std::abs(whole[r] - split[r]) > 1e-5 * (1 + std::abs(whole[r]));
    }
    EXPECT_LE(far_small, 1u);
    EXPECT_LE(far_split, 1u);
    // Another seed index gives other runs; chains of several seed indices may share a batch.
    const auto other = eval::forward_ais_log_weights(p, base, betas, 9, eval::chain_ids(2, 0, 40));
    EXPECT_NE(whole, other);
    std::vector<eval::ChainId> mixed = ids;
    for (const auto& c : eval::chain_ids(2, 0, 40)) mixed.push_back(c);
    const auto both = eval::forward_ais_log_weights(p, base, betas, 9, mixed, 80);
    std::size_t far_mixed = 0;
    for (std::size_t r = 0; r < 40; ++r) {
        far_mixed += std::abs(both[r] - whole[r]) > 1e-5 * (1 + std::abs(whole[r]));
        far_mixed += std::abs(both[40 + r] - other[r]) > 1e-5 * (1 + std::abs(other[r]));
    }
    EXPECT_LE(far_mixed, 1u);
}

// Chains at most 30% on take their products as sums of rows (engine/cpu_kernels.hpp), the
// rest one sgemm: with weights that are multiples of 1/64 every product is exact, so the
// log-weights must equal those of all-sgemm chains bit for bit. Base rates near 30% put
// rows on both sides of the threshold within a batch.
TEST(Ais, SparseRowsGiveTheSameWeightsAsProducts) {
    const RbmShape shape{60, 24};
    ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 12);
    for (std::size_t i = 0; i < shape.n_visible; ++i) p.vbias()[i] = p.vbias()[i] / 4 - 1.0f;
    const eval::BaseModel base = eval::base_model_from_biases(std::vector<double>(60, -0.85), 24);
    const std::vector<double> betas = eval::beta_schedule(200);
    const auto ids = eval::chain_ids(1, 0, 30);
    std::vector<double> weights[2], reverse[2];
    std::vector<float> starts(30 * shape.n_visible);
    std::mt19937 gen(13);
    std::bernoulli_distribution on(0.3);
    for (float& x : starts) x = on(gen) ? 1.0f : 0.0f;
    for (int sparse = 0; sparse < 2; ++sparse) {
        const bool was = cpu::use_sparse_samples(sparse == 1);
        weights[sparse] = eval::forward_ais_log_weights(p, base, betas, 9, ids);
        reverse[sparse] = eval::reverse_ais_log_z(p, base, betas, 9, ids, starts.data());
        cpu::use_sparse_samples(was);
    }
    EXPECT_EQ(weights[0], weights[1]);
    EXPECT_EQ(reverse[0], reverse[1]);
}

TEST(WeightSummary, EffectiveSampleSize) {
    const eval::WeightSummary equal = eval::summarize_log_weights(std::vector<double>(64, -3.0));
    EXPECT_NEAR(equal.ess, 64.0, 1e-9);
    EXPECT_NEAR(equal.log_mean, -3.0, 1e-12);
    EXPECT_NEAR(equal.log_lower, -3.0, 1e-12);
    EXPECT_NEAR(equal.log_upper, -3.0, 1e-12);

    std::vector<double> one_dominant(100, 0.0);
    one_dominant[17] = 60.0;
    const eval::WeightSummary dom = eval::summarize_log_weights(one_dominant);
    EXPECT_NEAR(dom.ess, 1.0, 1e-9);
    EXPECT_NEAR(dom.log_mean, 60.0 - std::log(100.0), 1e-9);
    EXPECT_EQ(dom.log_lower, -INFINITY);  // mean < 3 sigma of the mean

    const double neg_inf = -INFINITY;
    const eval::WeightSummary half = eval::summarize_log_weights({0.0, 0.0, neg_inf, neg_inf});
    EXPECT_NEAR(half.ess, 2.0, 1e-12);

    // Against the direct formulas, and invariant to a common shift of the log-weights.
    std::mt19937 gen(3);
    std::normal_distribution<double> normal(0, 2);
    std::vector<double> lw(200);
    for (double& x : lw) x = normal(gen);
    double s1 = 0, s2 = 0;
    for (double x : lw) {
        s1 += std::exp(x);
        s2 += std::exp(2 * x);
    }
    const double mean = s1 / 200, sd = std::sqrt((s2 - s1 * s1 / 200) / 199), se = sd / std::sqrt(200.0);
    const eval::WeightSummary s = eval::summarize_log_weights(lw);
    EXPECT_NEAR(s.ess, s1 * s1 / s2, 1e-9);
    EXPECT_NEAR(s.log_mean, std::log(mean), 1e-12);
    EXPECT_NEAR(s.log_upper, std::log(mean + 3 * se), 1e-9);
    EXPECT_NEAR(s.log_lower, std::log(mean - 3 * se), 1e-9);
    for (double& x : lw) x += 500;
    const eval::WeightSummary shifted = eval::summarize_log_weights(lw);
    EXPECT_NEAR(shifted.ess, s.ess, 1e-9);
    EXPECT_NEAR(shifted.log_mean - 500, s.log_mean, 1e-9);
}

TEST(EvalMetrics, EnumerationMatchesReferenceBothOrientations) {
    for (auto shape : {RbmShape{9, 5}, RbmShape{5, 9}, RbmShape{7, 7}}) {
        const ParamBuffer p = test::random_params(shape, 1.5, 23);
        const double ref = exact::log_partition(p);
        EXPECT_NEAR(eval::log_partition_enumerated(p), ref, 1e-9);
        // Split into pieces (as ranks do) and recombined.
        const uint64_t states = uint64_t(1) << eval::enumerated_units(shape);
        const double a = eval::log_partition_partial(p, 0, 7), b = eval::log_partition_partial(p, 7, states);
        const double top = std::max(a, b);
        EXPECT_NEAR(top + std::log(std::exp(a - top) + std::exp(b - top)), ref, 1e-9);
    }
}

TEST(EvalMetrics, PseudoLikelihoodFreeEnergyAndReconstruction) {
    for (double scale : {0.1, 1.0, 4.0}) {
        const ParamBuffer p = test::random_params({11, 13}, scale, 29);
        const std::size_t nv = 11, nh = 13, n = 300;  // more than one sgemm chunk
        const std::vector<float> rows = test::random_binary_rows(n, nv, 31);
        const eval::DataSums s = eval::data_sums(p, rows.data(), n, true);
        double pl = 0, fe = 0, xent = 0;
        for (std::size_t r = 0; r < n; ++r) {
            const float* v = rows.data() + r * nv;
            for (std::size_t i = 0; i < nv; ++i) pl += exact::log_conditional_bit(p, v, i);
            fe += exact::free_energy(p, v);
            const std::vector<double> ph = exact::hidden_probs(p, v);
            for (std::size_t i = 0; i < nv; ++i) {
                double z = p.vbias()[i];
                for (std::size_t j = 0; j < nh; ++j) z += ph[j] * p.W()[i * nh + j];
                xent += exact::softplus(z) - v[i] * z;
            }
        }
        EXPECT_EQ(s.examples, double(n));
        EXPECT_NEAR(s.pseudo_likelihood / n, pl / n, 1e-4 * (1 + std::abs(pl / n))) << scale;
        EXPECT_NEAR(s.free_energy / n, fe / n, 1e-4 * (1 + std::abs(fe / n))) << scale;
        EXPECT_NEAR(s.reconstruction_xent / n, xent / n, 1e-4 * (1 + std::abs(xent / n))) << scale;
    }
}

// rbm transform's features: p(h | v) of real-valued rows in [0, 1] (x/255 is not binary),
// every row of several sgemm chunks, against the reference conditional in double.
TEST(EvalMetrics, HiddenMeansMatchTheExactConditional) {
    const std::size_t nv = 11, nh = 13, n = 300;  // more than one sgemm chunk
    const ParamBuffer p = test::random_params({nv, nh}, 2.0, 37);
    std::mt19937 gen(41);
    std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
    std::vector<float> rows(n * nv);
    for (float& x : rows) x = pixel(gen);
    const std::vector<float> means = eval::hidden_means(p, rows.data(), n);
    ASSERT_EQ(means.size(), n * nh);
    for (std::size_t r = 0; r < n; ++r) {
        const std::vector<double> ph = exact::hidden_probs(p, rows.data() + r * nv);
        for (std::size_t j = 0; j < nh; ++j) ASSERT_NEAR(means[r * nh + j], ph[j], 2e-6) << "row " << r << " unit " << j;
    }
}

const std::vector<float> kSixBitRows = {1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0};  // two rows of 6

// The pseudo-likelihood of rows of 6 bits against enumeration of each conditional.
void expect_exact_pseudo_likelihood(const ParamBuffer& p, const std::vector<float>& rows) {
    const std::size_t n = rows.size() / 6;
    const eval::DataSums s = eval::data_sums(p, rows.data(), n, true);
    double pl = 0;
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t i = 0; i < 6; ++i) pl += exact::log_conditional_bit(p, rows.data() + r * 6, i);
    ASSERT_TRUE(std::isfinite(s.pseudo_likelihood));
    EXPECT_NEAR(s.pseudo_likelihood, pl, 1e-4 * (1 + std::abs(pl)));
}

// Extreme weights: the log1p shortcut's cancellation case must fall back correctly.
TEST(EvalMetrics, PseudoLikelihoodWithLargeWeights) {
    ParamBuffer p = test::random_params({6, 4}, 1.0, 2);
    p.W()[0] = -45.0f;
    p.hbias()[0] = 60.0f;
    p.W()[5] = 40.0f;
    expect_exact_pseudo_likelihood(p, kSixBitRows);
}

// Weights past expm1's range (e^709): the log1p shortcut's y overflows to inf (or to
// 0 * inf = NaN) and the plain difference must take over; |W| ~ 10^4 gave "an importance
// weight is not finite" and a pseudo-likelihood of -inf.
TEST(EvalMetrics, WeightsBeyondExpm1RangeStayFinite) {
    ParamBuffer p = test::random_params({6, 4}, 1.0, 2);
    p.W()[0] = 800.0f;
    p.W()[5] = -2000.0f;
    p.W()[10] = 1500.0f;
    expect_exact_pseudo_likelihood(p, kSixBitRows);

    // Three intervals: the first step multiplies a ~ 2000 by 0.5, past 709.
    const eval::BaseModel base = eval::base_model_from_biases(std::vector<double>(6, 0.0), 4);
    const std::vector<double> betas = eval::beta_schedule(3);
    const auto w = eval::forward_ais_log_weights(p, base, betas, 21, eval::chain_ids(0, 0, 50));
    for (double v : w) ASSERT_TRUE(std::isfinite(v));
    const auto lz = eval::reverse_ais_log_z(p, base, betas, 21, eval::chain_ids(0, 0, 2), kSixBitRows.data());
    for (double v : lz) ASSERT_TRUE(std::isfinite(v));
    // Exact increments make even three intervals land near the enumerated log Z here
    // (2305.81; AIS 2305.69, RAISE 2308-2309): the model is one dominant state.
    const double exact_z = exact::log_partition(p);
    EXPECT_NEAR(base.log_z + eval::summarize_log_weights(w).log_mean, exact_z, 5.0);
    for (double v : lz) EXPECT_NEAR(v, exact_z, 10.0);
}

// A schedule far too short for a peaked model: AIS underestimates log Z (an optimistic
// log-likelihood) and RAISE errs the other way, so the two bracket the exact value.
TEST(Raise, ShortScheduleBracketsTheExactValue) {
    const ParamBuffer p = test::random_params({20, 15}, 3.0, 17);
    const std::size_t nv = 20, n = 100;
    const std::vector<double> betas = eval::beta_schedule(5);
    const std::vector<float> rows = exact_samples(p, n, 5);
    const eval::BaseModel base = eval::base_model_from_biases(std::vector<double>(nv, 0.0), 15);
    const double exact_z = exact::log_partition(p);
    const double exact_ll = exact::mean_log_likelihood(p, rows.data(), n);
    const auto w = eval::forward_ais_log_weights(p, base, betas, 21, eval::chain_ids(0, 0, 100));
    const eval::WeightSummary s = eval::summarize_log_weights(w);
    const std::vector<double> lz = eval::reverse_ais_log_z(p, base, betas, 21, eval::chain_ids(0, 0, n), rows.data());
    const std::vector<double> fe = eval::free_energies(p, rows.data(), n);
    double raise_ll = 0;
    for (std::size_t r = 0; r < n; ++r) raise_ll += (-fe[r] - lz[r]) / double(n);
    EXPECT_LT(base.log_z + s.log_mean, exact_z);
    EXPECT_LT(raise_ll, exact_ll);
    EXPECT_LT(s.ess, 50.0);  // and the weights say so
}

TEST(EvalSeries, MatchLibm) {
    for (double x = -0.9; x < 5; x += 0.0003) {
        ASSERT_NEAR(eval::log1p_series(x), std::log1p(x), 2e-16 * (1 + std::abs(std::log1p(x)))) << x;
        ASSERT_NEAR(eval::expm1_series(x), std::expm1(x), 2e-16 * (1 + std::abs(std::expm1(x)))) << x;
    }
    for (double x : {1e-300, -1e-300, 1e-12, -1e-12, 0.0624999, -0.0624999}) {
        EXPECT_NEAR(eval::log1p_series(x), std::log1p(x), 4e-16 * std::abs(x)) << x;
        EXPECT_NEAR(eval::expm1_series(x), std::expm1(x), 4e-16 * std::abs(x)) << x;
    }
}
