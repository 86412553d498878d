// Centering and the update schedules. The engine's centered update is checked against
// the definition taken the long way round: convert the plain parameters to centered
// ones, take a plain momentum step along the centered gradient there, convert back.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>

#include "engine/engine.hpp"
#include "io/checkpoint.hpp"
#include "model/exact.hpp"
#include "test_models.hpp"
#include "train/config.hpp"
#include "util/check.hpp"

using namespace rbm;

namespace {

std::vector<float> uniform01(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& e : x) e = u(gen);
    return x;
}

struct StepResult {
    ParamBuffer params, velocity;
    Offsets offsets;
    std::vector<float> gradient;  // as compute_gradient left it, with <h>_data when centered
};

// One CD-1 step of a fresh CPU engine from p and velocity v, centered on `offsets`.
StepResult one_step(const ParamBuffer& p, const ParamBuffer& v, const Offsets& offsets,
                    const std::vector<float>& rows, const UpdateRule& rule, float scale) {
    auto engine = make_cpu_engine(p.shape);
    engine->set_params(p);
    engine->set_velocity(v);
    engine->set_offsets(offsets);
    engine->set_training_shard(test::dataset_of(rows, p.shape.n_visible));
    StepSettings s;
    s.method = Method::cd;
    s.batch = rows.size() / p.shape.n_visible;
    std::vector<uint32_t> order(s.batch);
    std::iota(order.begin(), order.end(), 0u);
    engine->compute_gradient(order.data(), s, StepSpec{});
    const GradientView g = engine->gradient();
    StepResult r{ParamBuffer(p.shape), ParamBuffer(p.shape), {}, std::vector<float>(g.data, g.data + g.count)};
    engine->apply_update(rule, scale);
    engine->get_params(r.params);
    engine->get_velocity(r.velocity);
    r.offsets = engine->get_offsets();
    return r;
}

}  // namespace

TEST(Centering, UpdateIsAPlainStepOfTheCenteredParameters) {
    const RbmShape shape{7, 4};
    const std::size_t nv = 7, nh = 4, batch = 6;
    const ParamBuffer p = test::random_params(shape, 0.8, 31);
    const ParamBuffer v0 = test::random_params(shape, 0.05, 32);
    const Offsets offsets{uniform01(nv, 33), uniform01(nh, 34)};
    const std::vector<float> rows = test::random_binary_rows(batch, nv, 35);
    const UpdateRule rule{0.1f, 0.5f, 0.01f, 0.2f};
    const float scale = 0.5f;  // as if two ranks had summed
    const StepResult got = one_step(p, v0, offsets, rows, rule, scale);
    ASSERT_EQ(got.gradient.size(), shape.total() + nh);

    // The data's hidden means ride behind the gradient, for the offsets' moving average.
    for (std::size_t j = 0; j < nh; ++j) {
        double mean = 0;
        for (std::size_t r = 0; r < batch; ++r) mean += exact::hidden_probs(p, rows.data() + r * nv)[j] / double(batch);
        EXPECT_NEAR(got.gradient[shape.total() + j], mean, 1e-6);
    }

    // The long way: centered parameters b~ = b + W lambda, c~ = c + W' mu; the centered
    // gradient; a plain momentum step there; back to b = b~ - W lambda, c = c~ - W' mu.
    const float* g = got.gradient.data();
    const float* gb = g + shape.vbias_offset();
    const float* gc = g + shape.hbias_offset();
    const std::vector<float>& mu = offsets.visible;
    const std::vector<float>& lambda = offsets.hidden;
    std::vector<double> W(nv * nh), bt(nv), ct(nh), vel(shape.total());
    for (std::size_t e = 0; e < nv * nh; ++e) W[e] = p.W()[e];
    for (std::size_t i = 0; i < nv; ++i) {
        bt[i] = p.vbias()[i];
        for (std::size_t j = 0; j < nh; ++j) bt[i] += W[i * nh + j] * lambda[j];
    }
    for (std::size_t j = 0; j < nh; ++j) {
        ct[j] = p.hbias()[j];
        for (std::size_t i = 0; i < nv; ++i) ct[j] += W[i * nh + j] * mu[i];
    }
    for (std::size_t i = 0; i < nv; ++i)
        for (std::size_t j = 0; j < nh; ++j) {
            const std::size_t e = i * nh + j;
            const double centered = double(g[e]) - mu[i] * double(gc[j]) - double(gb[i]) * lambda[j];
            vel[e] = rule.momentum * v0.values[e] + rule.learning_rate * (scale * centered - rule.weight_decay * W[e]);
            W[e] += vel[e];
        }
    for (std::size_t i = 0; i < nv; ++i) {
        const std::size_t e = shape.vbias_offset() + i;
        vel[e] = rule.momentum * v0.values[e] + rule.learning_rate * scale * gb[i];
        bt[i] += vel[e];
    }
    for (std::size_t j = 0; j < nh; ++j) {
        const std::size_t e = shape.hbias_offset() + j;
        vel[e] = rule.momentum * v0.values[e] + rule.learning_rate * scale * gc[j];
        ct[j] += vel[e];
    }
    for (std::size_t e = 0; e < nv * nh; ++e) EXPECT_NEAR(got.params.W()[e], W[e], 1e-6) << "W " << e;
    for (std::size_t i = 0; i < nv; ++i) {
        double b = bt[i];
        for (std::size_t j = 0; j < nh; ++j) b -= W[i * nh + j] * lambda[j];
        EXPECT_NEAR(got.params.vbias()[i], b, 1e-5) << "vbias " << i;
    }
    for (std::size_t j = 0; j < nh; ++j) {
        double c = ct[j];
        for (std::size_t i = 0; i < nv; ++i) c -= W[i * nh + j] * mu[i];
        EXPECT_NEAR(got.params.hbias()[j], c, 1e-5) << "hbias " << j;
    }
    for (std::size_t e = 0; e < shape.total(); ++e) EXPECT_NEAR(got.velocity.values[e], vel[e], 1e-6) << e;

    // mu stays; lambda moves towards this step's data hidden means.
    EXPECT_EQ(got.offsets.visible, mu);
    for (std::size_t j = 0; j < nh; ++j)
        EXPECT_NEAR(got.offsets.hidden[j],
                    lambda[j] + rule.offset_rate * (scale * got.gradient[shape.total() + j] - lambda[j]), 1e-6);
}

// Offsets at zero make the centered RBM the plain one, so the update must be the plain update.
TEST(Centering, ZeroOffsetsGiveThePlainUpdate) {
    const RbmShape shape{6, 5};
    const ParamBuffer p = test::random_params(shape, 0.8, 41);
    const ParamBuffer v0 = test::random_params(shape, 0.05, 42);
    const std::vector<float> rows = test::random_binary_rows(5, 6, 43);
    const UpdateRule rule{0.05f, 0.9f, 0.001f, 0.01f};
    const StepResult plain = one_step(p, v0, {}, rows, rule, 1.0f);
    const StepResult zero = one_step(p, v0, {std::vector<float>(6, 0.0f), std::vector<float>(5, 0.0f)}, rows, rule, 1.0f);
    EXPECT_EQ(plain.gradient.size(), shape.total());
    EXPECT_TRUE(plain.offsets.empty());
    for (std::size_t e = 0; e < shape.total(); ++e) {
        EXPECT_FLOAT_EQ(zero.params.values[e], plain.params.values[e]) << e;
        EXPECT_FLOAT_EQ(zero.velocity.values[e], plain.velocity.values[e]) << e;
    }
}

TEST(Centering, OffsetsThatDoNotFitAreRefused) {
    auto engine = make_cpu_engine({3, 2});
    EXPECT_THROW(engine->set_offsets({{0.5f, 0.5f}, {0.5f, 0.5f}}), Error);
    EXPECT_THROW(engine->set_offsets({{0.5f, 0.5f, 1.5f}, {0.5f, 0.5f}}), Error);
    EXPECT_THROW(engine->set_offsets({{0.5f, 0.5f, NAN}, {0.5f, 0.5f}}), Error);
    EXPECT_NO_THROW(engine->set_offsets({{0.0f, 1.0f, 0.5f}, {0.5f, 0.25f}}));
}

TEST(Centering, CheckpointKeepsTheOffsets) {
    Checkpoint c;
    c.params = test::random_params({5, 3}, 1.0, 51);
    c.velocity = ParamBuffer(c.params.shape);
    c.visible_offset = uniform01(5, 52);
    c.hidden_offset = uniform01(3, 53);
    c.epoch_metric_sums = {0, 0, 0, 0, 0, 0};
    c.steps_per_epoch = 1;  // what every run has at least
    const std::string path = std::string(RBM_TEST_TMP) + "/centered.h5";
    std::filesystem::create_directories(RBM_TEST_TMP);
    write_checkpoint(path, c);
    const Checkpoint r = read_checkpoint(path);
    EXPECT_EQ(r.visible_offset, c.visible_offset);
    EXPECT_EQ(r.hidden_offset, c.hidden_offset);
    c.visible_offset.clear();
    c.hidden_offset.clear();
    write_checkpoint(path, c);
    EXPECT_TRUE(read_checkpoint(path).visible_offset.empty());
}

TEST(Schedules, LearningRateFallsLinearlyAndMomentumWarmsUp) {
    TrainConfig c;
    c.update.learning_rate = 0.1f;
    c.update.momentum = 0.9f;
    EXPECT_FLOAT_EQ(c.update_at(500, 3, 1001).learning_rate, 0.1f);  // constant unless asked
    EXPECT_FLOAT_EQ(c.update_at(500, 3, 1001).momentum, 0.9f);
    c.lr_final = 0.0f;
    c.momentum_warmup = 2;
    c.initial_momentum = 0.5f;
    EXPECT_FLOAT_EQ(c.update_at(0, 0, 1001).learning_rate, 0.1f);
    EXPECT_FLOAT_EQ(c.update_at(500, 1, 1001).learning_rate, 0.05f);
    EXPECT_FLOAT_EQ(c.update_at(1000, 9, 1001).learning_rate, 0.0f);
    EXPECT_FLOAT_EQ(c.update_at(0, 0, 1001).momentum, 0.5f);
    EXPECT_FLOAT_EQ(c.update_at(400, 1, 1001).momentum, 0.5f);
    EXPECT_FLOAT_EQ(c.update_at(401, 2, 1001).momentum, 0.9f);
}
