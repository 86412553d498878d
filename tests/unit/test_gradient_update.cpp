// The fused gradient-and-update pass of the CUDA engine's small-batch step
// (kernels/gradient_update.hpp), every thread run on the CPU: it must leave what forming
// the gradient ([v0; vk]' [ph0 / B; -phk / C] and the bias sums, each summed over the rows
// in order) and then applying the separate update rule leaves, on shapes whose rows are
// not whole Quads, with momentum and weight decay; and it must flag a non-finite result.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/gradient_update.hpp"

namespace fused = rbm::kernels::fused;

namespace {

struct Step {
    int batch, chains, nv, nh;
    std::vector<float> v, h, row_weights, params, velocity;
};

Step random_step(int batch, int chains, int nv, int nh, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::normal_distribution<float> normal(0.0f, 0.1f);
    const int rows = batch + chains;
    Step s{batch, chains, nv, nh, std::vector<float>(std::size_t(rows) * nv), std::vector<float>(std::size_t(rows) * nh),
           std::vector<float>(rows), std::vector<float>(std::size_t(nv) * nh + nv + nh),
           std::vector<float>(std::size_t(nv) * nh + nv + nh)};
    for (int r = 0; r < rows; ++r) {
        const float weight = r < batch ? 1.0f / float(batch) : -1.0f / float(chains);
        s.row_weights[r] = weight;
        for (int i = 0; i < nv; ++i) s.v[std::size_t(r) * nv + i] = r < batch ? u(gen) : float(u(gen) < 0.5f);
        for (int j = 0; j < nh; ++j) s.h[std::size_t(r) * nh + j] = u(gen) * weight;
    }
    for (float& p : s.params) p = normal(gen);
    for (float& x : s.velocity) x = normal(gen);
    return s;
}

fused::GradientUpdateArgs args_for(Step& s, int* flag, float lr, float momentum, float decay, float scale) {
    return {s.v.data(), s.h.data(), s.row_weights.data(), s.params.data(), s.velocity.data(), flag,
            s.batch + s.chains, s.nv, s.nh, lr, momentum, decay, scale};
}

// The gradient summed plainly, row by row, then the separate update rule.
void reference_update(Step& s, float lr, float momentum, float decay, float scale) {
    const int rows = s.batch + s.chains, nv = s.nv, nh = s.nh;
    std::vector<float> g(s.params.size(), 0.0f);
    for (int i = 0; i < nv; ++i)
        for (int j = 0; j < nh; ++j)
            for (int r = 0; r < rows; ++r)
                g[std::size_t(i) * nh + j] =
                    std::fma(s.v[std::size_t(r) * nv + i], s.h[std::size_t(r) * nh + j], g[std::size_t(i) * nh + j]);
    const std::size_t weights = std::size_t(nv) * nh;
    for (int i = 0; i < nv; ++i)
        for (int r = 0; r < rows; ++r) g[weights + i] = std::fma(s.row_weights[r], s.v[std::size_t(r) * nv + i], g[weights + i]);
    for (int j = 0; j < nh; ++j)
        for (int r = 0; r < rows; ++r) g[weights + nv + j] += s.h[std::size_t(r) * nh + j];
    for (std::size_t e = 0; e < g.size(); ++e) {
        const float d = e < weights ? decay * s.params[e] : 0.0f;
        s.velocity[e] = momentum * s.velocity[e] + lr * (scale * g[e] - d);
        s.params[e] += s.velocity[e];
    }
}

float worst_relative(const std::vector<float>& a, const std::vector<float>& b) {
    float worst = 0;
    for (std::size_t e = 0; e < a.size(); ++e)
        worst = std::max(worst, std::abs(a[e] - b[e]) / std::max(1e-3f, std::abs(b[e])));
    return worst;
}

}  // namespace

TEST(GradientUpdate, EqualsTheGradientThenTheUpdate) {
    struct Case {
        int batch, chains, nv, nh;
        float lr, momentum, decay, scale;
    };
    for (const Case c : {Case{20, 20, 784, 500, 0.1f, 0.0f, 0.0f, 1.0f}, Case{12, 7, 33, 17, 0.05f, 0.9f, 0.01f, 0.5f},
                         Case{5, 9, 10, 3, 1.0f, 0.5f, 0.0f, 1.0f}}) {
        SCOPED_TRACE(testing::Message() << c.nv << "x" << c.nh << ", " << c.batch << " + " << c.chains << " rows");
        Step fused_step = random_step(c.batch, c.chains, c.nv, c.nh, 7), want = fused_step;
        int flag = 0;
        const fused::GradientUpdateArgs a = args_for(fused_step, &flag, c.lr, c.momentum, c.decay, c.scale);
        // In reverse: no thread may depend on another's result.
        for (std::size_t t = fused::gradient_update_threads(a); t-- > 0;) fused::gradient_update_at(a, t);
        reference_update(want, c.lr, c.momentum, c.decay, c.scale);
        // The same sums in the same order; only the compiler's contraction of the update
        // rule may differ between the two sites.
        EXPECT_LT(worst_relative(fused_step.params, want.params), 1e-6f);
        EXPECT_LT(worst_relative(fused_step.velocity, want.velocity), 1e-6f);
        EXPECT_EQ(flag, 0);
        // Something moved: the update is not empty.
        EXPECT_GT(worst_relative(fused_step.params, random_step(c.batch, c.chains, c.nv, c.nh, 7).params), 1e-4f);
    }
}

TEST(GradientUpdate, FlagsANonFiniteParameter) {
    Step s = random_step(4, 4, 9, 6, 3);
    s.h[5] = std::numeric_limits<float>::infinity();  // row 0, hidden unit 5: W[:, 5] and hbias[5] overflow
    int flag = 0;
    const fused::GradientUpdateArgs a = args_for(s, &flag, 0.1f, 0.0f, 0.0f, 1.0f);
    for (std::size_t t = 0; t < fused::gradient_update_threads(a); ++t) fused::gradient_update_at(a, t);
    EXPECT_EQ(flag, 1);
    EXPECT_FALSE(std::isfinite(s.params[5]));
    EXPECT_TRUE(std::isfinite(s.params[4]));
}
