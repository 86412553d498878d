// The gradient product and the update as one pass, for a step whose gradient nobody
// sums across ranks: each thread forms its parameters' gradient from the step's rows
// ([v0; vk] and [ph0 / B; -phk / C], as the gradient product would) and applies the
// update rule to them at once, so a small-batch step needs neither the gradient's
// product and bias sums nor a separate update kernel (4 GPU operations become 1).
// Written for host and device alike: the CUDA kernel runs one thread per index, and a
// unit test runs every index on the CPU (tests/unit/test_gradient_update.cpp).
#pragma once

#include <math.h>

#include <cstddef>

#include "random/streams.hpp"  // RBM_HOST_DEVICE

namespace rbm::kernels::fused {

struct GradientUpdateArgs {
    const float* v;            // [rows, nv]: the step's visible rows, batch then chains
    const float* h;            // [rows, nh]: their hidden probabilities times the row weights
    const float* row_weights;  // [rows]: 1 / batch, then -1 / chains (the visible bias gradient's)
    float* params;             // W [nv, nh], vbias [nv], hbias [nh]
    float* velocity;           // the same layout
    int* nonfinite;            // set to 1 where a new parameter is not finite
    int rows, nv, nh;
    float lr, momentum, decay, scale;
};

// Threads: one per Quad of a row of W, then one per visible bias and per hidden bias.
RBM_HOST_DEVICE std::size_t gradient_update_threads(const GradientUpdateArgs& a) {
    return std::size_t(a.nv) * std::size_t((a.nh + 3) / 4) + std::size_t(a.nv) + std::size_t(a.nh);
}

// The update rule, here and in the separate update kernel (kernels/rbm_kernels.cu):
// v = momentum v + lr (scale g - decay p); p += v, with decay 0 for the biases. With
// `nonfinite`, *nonfinite = 1 where the new parameter is not finite.
RBM_HOST_DEVICE void apply_update_rule(float& p, float& v, float g, float lr, float momentum, float decay,
                                       float scale, int* nonfinite) {
    const float vel = momentum * v + lr * (scale * g - decay * p);
    v = vel;
    p += vel;
    if (nonfinite && !isfinite(p)) *nonfinite = 1;
}

RBM_HOST_DEVICE void update_parameter(const GradientUpdateArgs& a, std::size_t e, float g, bool weight) {
    apply_update_rule(a.params[e], a.velocity[e], g, a.lr, a.momentum, weight ? a.decay : 0.0f, a.scale,
                      a.nonfinite);
}

// Thread `index`: its gradient summed over the rows in order, then its update.
RBM_HOST_DEVICE void gradient_update_at(const GradientUpdateArgs& a, std::size_t index) {
    const std::size_t quads = std::size_t((a.nh + 3) / 4), weight_threads = std::size_t(a.nv) * quads;
    if (index < weight_threads) {
        const int i = int(index / quads), j0 = int(index % quads) * 4;
        const int n = a.nh - j0 < 4 ? a.nh - j0 : 4;
        float g[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int r = 0; r < a.rows; ++r) {
            const float x = a.v[std::size_t(r) * a.nv + i];
            const float* hr = a.h + std::size_t(r) * a.nh + j0;
            for (int c = 0; c < n; ++c) g[c] = fmaf(x, hr[c], g[c]);
        }
        for (int c = 0; c < n; ++c) update_parameter(a, std::size_t(i) * a.nh + j0 + c, g[c], true);
        return;
    }
    const std::size_t bias = index - weight_threads, weights = std::size_t(a.nv) * a.nh;
    if (bias < std::size_t(a.nv)) {
        float g = 0.0f;
        for (int r = 0; r < a.rows; ++r) g = fmaf(a.row_weights[r], a.v[std::size_t(r) * a.nv + bias], g);
        update_parameter(a, weights + bias, g, false);
    } else if (bias < std::size_t(a.nv) + a.nh) {
        const std::size_t j = bias - a.nv;
        float g = 0.0f;
        for (int r = 0; r < a.rows; ++r) g += a.h[std::size_t(r) * a.nh + j];
        update_parameter(a, weights + a.nv + j, g, false);
    }
}

}  // namespace rbm::kernels::fused
