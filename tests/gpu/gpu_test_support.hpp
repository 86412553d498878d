// What the GPU suite's files share: engines on the GPU beside the CPU's, data, and the
// comparisons several tests make (a step against the CPU engine, a short training run).
// Without a visible GPU every test skips and says so.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "kernels/gibbs_chain.cuh"
#include "model/init.hpp"
#include "../unit/test_models.hpp"

namespace rbm::test {

#define SKIP_WITHOUT_GPU()                                                               \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: GPU suite skipped"

inline std::unique_ptr<Engine> cuda_engine(RbmShape shape, ChainKernel chain_kernel = ChainKernel::off) {
    EngineOptions o;
    o.device = DeviceKind::cuda;
    o.chain_kernel = chain_kernel;
    return make_engine(shape, o);
}

// Real-valued rows in [0, 1] (exercises the rounding path of the pseudo-likelihood).
inline std::vector<float> grey_rows(std::size_t n, std::size_t cols, unsigned seed) {
    std::vector<float> rows = test::random_binary_rows(n, cols, seed);
    for (std::size_t e = 0; e < rows.size(); ++e) rows[e] = rows[e] * 0.6f + 0.3f * float((e * 7) % 5) / 4.0f;
    return rows;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (std::size_t e = 0; e < a.size(); ++e) worst = std::max(worst, double(std::abs(a[e] - b[e])));
    return worst;
}

template <typename T>
std::size_t mismatches(const std::vector<T>& a, const std::vector<T>& b) {
    std::size_t n = 0;
    for (std::size_t e = 0; e < a.size(); ++e) n += a[e] != b[e];
    return n;
}

struct Pair {
    std::unique_ptr<Engine> cpu, gpu;
};

inline Pair make_pair_with(const ParamBuffer& p, const Dataset& shard, std::size_t chains,
                    ChainKernel chain_kernel = ChainKernel::off) {
    Pair pair{make_cpu_engine(p.shape), cuda_engine(p.shape, chain_kernel)};
    for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
        e->set_params(p);
        e->set_velocity(ParamBuffer(p.shape));
        e->set_training_shard(shard);
        e->set_chains(std::vector<uint8_t>(chains * p.shape.n_hidden, 0));
    }
    return pair;
}

// The GPU's gradient, read back through the parameters: lr 1 from zero velocity, then
// the parameters and velocity as they were.
inline std::vector<float> gpu_gradient(Engine& gpu) {
    const RbmShape shape = gpu.shape();
    ParamBuffer before(shape), after(shape);
    gpu.get_params(before);
    gpu.apply_update(UpdateRule{1.0f, 0.0f, 0.0f}, 1.0f);
    gpu.get_params(after);
    std::vector<float> grad(shape.total());
    for (std::size_t e = 0; e < grad.size(); ++e) grad[e] = after.values[e] - before.values[e];
    gpu.set_params(before);
    gpu.set_velocity(ParamBuffer(shape));
    return grad;
}

// The gradient as the engine forms it for a reducer (gradient()), copied to the host.
inline std::vector<float> formed_gradient(Engine& gpu) {
    const GradientView g = gpu.gradient();
    std::vector<float> host(g.count);
    EXPECT_EQ(cudaStreamSynchronize(static_cast<cudaStream_t>(g.stream)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), g.data, g.count * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
}

// False too where run_gpu_checks.sh found the cluster kernel hanging (RBM_GPU_NO_CHAIN_KERNEL=1):
// every test that would launch it then takes the cuBLAS path or skips.
inline bool clusters_available() {
    const char* no_chain = std::getenv("RBM_GPU_NO_CHAIN_KERNEL");
    if (no_chain && std::string(no_chain) == "1") return false;
    int major = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess && major >= 9;
}

// Shapes whose rows are not whole Philox blocks (786, 102) check the draws' numbering
// across rows.
inline void compare_step(Method method, int k, std::size_t batch = 16, RbmShape shape = {96, 40},
                  ChainKernel chain_kernel = ChainKernel::off) {
    // Weights scaled so pre-activations stay about as large as at 96 visible units.
    const ParamBuffer p = test::random_params(shape, 0.3 * std::sqrt(96.0 / double(shape.n_visible)), 3);
    const std::size_t nv = shape.n_visible, rows = 4 * batch;
    const Dataset shard = test::dataset_of(grey_rows(rows, nv, 4), nv);
    if (chain_kernel != ChainKernel::off) {  // else the engine would quietly take the cuBLAS sweeps
        ASSERT_TRUE(kernels::plan_gibbs_chain(shape.n_visible, shape.n_hidden, batch, 0).usable());
    }
    Pair pair = make_pair_with(p, shard, batch, chain_kernel);
    const StepSettings s{.method = method, .k = k, .batch = batch, .chains = batch, .seed = 9};
    std::vector<uint32_t> order(rows);
    std::iota(order.begin(), order.end(), 0u);
    for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) e->set_epoch_order(order);
    for (uint64_t step = 0; step < 4; ++step) {
        StepSpec spec;
        spec.step = step;
        spec.pl_bit = std::size_t(step % shape.n_visible);
        for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) e->compute_gradient(order.data() + step * batch, s, spec);
        const GradientView gc = pair.cpu->gradient();
        const std::vector<float> cpu_grad(gc.data, gc.data + gc.count), gpu_grad = gpu_gradient(*pair.gpu);
        // A flipped sample moves a gradient entry by about 1/batch: allow a few.
        std::size_t off = 0;
        for (std::size_t e = 0; e < gpu_grad.size(); ++e) off += std::abs(gpu_grad[e] - cpu_grad[e]) > 1e-4f;
        EXPECT_LE(off, gpu_grad.size() / 100) << "step " << step;
        EXPECT_LE(mismatches(pair.cpu->get_chains(), pair.gpu->get_chains()), std::size_t(2 + batch * shape.n_hidden / 4000))
            << "step " << step;
        const MetricSums mc = pair.cpu->take_metric_sums(), mg = pair.gpu->take_metric_sums();
        EXPECT_EQ(mc.examples, mg.examples);
        EXPECT_NEAR(mc.pseudo_likelihood, mg.pseudo_likelihood, 1e-4 * std::abs(mc.pseudo_likelihood) + 1e-3);
        EXPECT_NEAR(mc.reconstruction_xent, mg.reconstruction_xent, 1e-5 * std::abs(mc.reconstruction_xent));
    }
}

// A short training run on the GPU and on the CPU from the same start agrees: the
// runs differ only by rare near-tie samples, which move W by lr/B each.
inline void short_training_run_agrees(ChainKernel chain_kernel) {
    const RbmShape shape{784, 100};
    const ParamBuffer p = initial_params(shape, 1);
    const Dataset shard = test::dataset_of(grey_rows(400, 784, 14), 784);
    if (chain_kernel != ChainKernel::off) {
        ASSERT_TRUE(kernels::plan_gibbs_chain(784, 100, 20, 0).usable());
    }
    Pair pair = make_pair_with(p, shard, 20, chain_kernel);
    std::vector<uint32_t> order(400);
    std::iota(order.begin(), order.end(), 0u);
    const StepSettings s{.k = 5, .batch = 20, .chains = 20};
    for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
        e->set_epoch_order(order);
        for (uint64_t step = 0; step < 20; ++step) {
            StepSpec spec;
            spec.step = step;
            spec.pl_bit = std::size_t(step % 784);
            e->compute_gradient(order.data() + step * 20, s, spec);
            e->apply_update(UpdateRule{}, 1.0f);
        }
    }
    ParamBuffer a(shape), b(shape);
    pair.cpu->get_params(a);
    pair.gpu->get_params(b);
    double diff = 0, norm = 0;
    for (std::size_t e = 0; e < a.values.size(); ++e) {
        diff += std::abs(a.values[e] - b.values[e]);
        norm += std::abs(a.values[e]);
    }
    EXPECT_LT(diff / norm, 1e-3);
    const MetricSums mc = pair.cpu->take_metric_sums(), mg = pair.gpu->take_metric_sums();
    EXPECT_NEAR(mc.pseudo_likelihood / mc.examples, mg.pseudo_likelihood / mg.examples, 0.5);
}

}  // namespace rbm::test
