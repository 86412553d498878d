// The GPU suite, shaped like ggml's test-backend-ops: every CUDA engine operation
// against the CPU engine on the same inputs and the same Philox streams. Binary
// samples must be identical except where a probability lies within rounding of its
// uniform draw; means, gradients and metrics agree to float tolerance. Without a
// visible GPU every test skips and says so. The whole-chain cluster kernel has its own
// file (test_cuda_chain_kernel.cpp).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/engine.hpp"
#include "gpu_test_support.hpp"

using namespace rbm;
using namespace rbm::test;


TEST(CudaEngine, FreeEnergyMatchesCpu) {
    SKIP_WITHOUT_GPU();
    const ParamBuffer p = test::random_params({96, 40}, 0.3, 1);
    auto cpu = make_cpu_engine(p.shape), gpu = cuda_engine(p.shape);
    cpu->set_params(p);
    gpu->set_params(p);
    const auto rows = grey_rows(2000, 96, 2);
    const double a = cpu->free_energy_sum(rows.data(), 2000), b = gpu->free_energy_sum(rows.data(), 2000);
    EXPECT_NEAR(a, b, 1e-5 * std::abs(a));
}

TEST(CudaEngine, PcdStepMatchesCpu) { SKIP_WITHOUT_GPU(); compare_step(Method::pcd, 3); }
TEST(CudaEngine, CdStepMatchesCpu) { SKIP_WITHOUT_GPU(); compare_step(Method::cd, 1); }
TEST(CudaEngine, StepsAtTutorialScaleMatchCpu) {
    SKIP_WITHOUT_GPU();
    compare_step(Method::pcd, 2, 20, {786, 102});
    compare_step(Method::cd, 1, 33, {786, 102});
}

TEST(CudaEngine, UpdateMatchesCpu) {
    SKIP_WITHOUT_GPU();
    const RbmShape shape{50, 30};
    const ParamBuffer p = test::random_params(shape, 0.5, 5);
    const Dataset shard = test::dataset_of(test::random_binary_rows(10, 50, 6), 50);
    Pair pair = make_pair_with(p, shard, 10);
    const ParamBuffer v = test::random_params(shape, 0.01, 7);
    std::vector<uint32_t> order(10);
    std::iota(order.begin(), order.end(), 0u);
    const StepSettings s{.method = Method::cd, .k = 1, .batch = 10};
    for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
        e->set_velocity(v);
        e->compute_gradient(order.data(), s, StepSpec{});
        e->apply_update(UpdateRule{0.05f, 0.9f, 0.001f}, 0.5f);
    }
    ParamBuffer a(shape), b(shape);
    pair.cpu->get_params(a);
    pair.gpu->get_params(b);
    EXPECT_LT(max_abs_diff(a.values, b.values), 0.05f / 10 * 3);  // at most a few flipped samples' worth
}

// Centered: the data's hidden means behind the gradient, the centered update and the
// moving hidden offset, CPU against GPU over a few PCD steps.
TEST(CudaEngine, CenteredStepsMatchCpu) {
    SKIP_WITHOUT_GPU();
    const RbmShape shape{50, 30};
    const ParamBuffer p = test::random_params(shape, 0.3, 13);
    const Dataset shard = test::dataset_of(test::random_binary_rows(40, 50, 14), 50);
    Pair pair = make_pair_with(p, shard, 10);
    Offsets offsets{std::vector<float>(50), std::vector<float>(30, 0.5f)};
    for (std::size_t i = 0; i < 50; ++i) offsets.visible[i] = float(i % 7) / 7.0f;
    std::vector<uint32_t> order(40);
    std::iota(order.begin(), order.end(), 0u);
    const StepSettings s{.k = 2, .batch = 10, .chains = 10};
    for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
        e->set_offsets(offsets);
        e->set_epoch_order(order);
    }
    for (uint64_t step = 0; step < 4; ++step) {
        StepSpec spec;
        spec.step = step;
        spec.pl_bit = std::size_t(step % 50);
        for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
            e->compute_gradient(order.data() + step * 10, s, spec);
            EXPECT_EQ(e->gradient().count, shape.total() + 30);
            e->apply_update(UpdateRule{0.05f, 0.5f, 0.001f, 0.1f}, 1.0f);
        }
    }
    ParamBuffer a(shape), b(shape);
    pair.cpu->get_params(a);
    pair.gpu->get_params(b);
    EXPECT_LT(max_abs_diff(a.values, b.values), 0.05 / 10 * 4 * 3);  // a few flipped samples' worth
    const Offsets oc = pair.cpu->get_offsets(), og = pair.gpu->get_offsets();
    EXPECT_EQ(oc.visible, og.visible);
    EXPECT_LT(max_abs_diff(oc.hidden, og.hidden), 1e-3);  // moved by probabilities of slightly different models
}

TEST(CudaEngine, GibbsSamplesMatchCpu) {
    SKIP_WITHOUT_GPU();
    const RbmShape shape{64, 48};
    const ParamBuffer p = test::random_params(shape, 0.4, 8);
    auto cpu = make_cpu_engine(shape), gpu = cuda_engine(shape);
    cpu->set_params(p);
    gpu->set_params(p);
    std::vector<float> v1 = test::random_binary_rows(32, 64, 9), v2 = v1, m1(v1.size()), m2(v1.size());
    const Stream stream = Stream::make(11, 0, Purpose::sample);
    cpu->gibbs_visible(v1.data(), m1.data(), 32, 1, stream, 5);
    gpu->gibbs_visible(v2.data(), m2.data(), 32, 1, stream, 5);
    std::size_t off = 0;
    for (std::size_t e = 0; e < v1.size(); ++e) off += v1[e] != v2[e];
    EXPECT_LE(off, std::size_t(2));
    EXPECT_LT(max_abs_diff(m1, m2), off ? 1.0 : 1e-5);
}

// Several sweeps per call, and a second call that goes on from where the first ended: the
// step counter advances on the device, and one that did not (or advanced another) would
// redraw every sweep after the first with the first's numbers, unlike the CPU. With
// dyadic weights every pre-activation is exact, so only a probability within rounding of
// its draw can part the two.
TEST(CudaEngine, GibbsSweepsFollowTheCpuStream) {
    SKIP_WITHOUT_GPU();
    const RbmShape shape{64, 48};
    const ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 8);
    auto cpu = make_cpu_engine(shape), gpu = cuda_engine(shape);
    cpu->set_params(p);
    gpu->set_params(p);
    std::vector<float> v1 = test::random_binary_rows(32, 64, 9), v2 = v1, m1(v1.size()), m2(v1.size());
    const Stream stream = Stream::make(11, 0, Purpose::sample);
    for (uint64_t first_step : {7u, 12u}) {
        cpu->gibbs_visible(v1.data(), m1.data(), 32, 5, stream, first_step);
        gpu->gibbs_visible(v2.data(), m2.data(), 32, 5, stream, first_step);
        std::size_t rows_apart = 0;
        for (std::size_t r = 0; r < 32; ++r) {
            const std::vector<float> a(v1.begin() + long(r * 64), v1.begin() + long(r * 64 + 64)),
                b(v2.begin() + long(r * 64), v2.begin() + long(r * 64 + 64));
            if (a != b) {
                ++rows_apart;
                continue;
            }
            for (std::size_t i = 0; i < 64; ++i) EXPECT_NEAR(m1[r * 64 + i], m2[r * 64 + i], 1e-5) << r;
        }
        EXPECT_LE(rows_apart, 1u) << "after the sweeps from step " << first_step;
        const auto on = std::count(v1.begin(), v1.end(), 1.0f);
        EXPECT_GT(on, long(v1.size() / 10));  // the draws are not forced
        EXPECT_LT(on, long(v1.size() - v1.size() / 10));
    }
}

TEST(CudaEngine, ChainVisiblesMatchCpu) {
    SKIP_WITHOUT_GPU();
    const RbmShape shape{40, 24};
    const ParamBuffer p = test::random_params(shape, 0.5, 12);
    auto cpu = make_cpu_engine(shape), gpu = cuda_engine(shape);
    std::vector<uint8_t> chains(8 * 24);
    for (std::size_t e = 0; e < chains.size(); ++e) chains[e] = uint8_t((e * 5 + 1) % 3 == 0);
    for (Engine* e : {cpu.get(), gpu.get()}) {
        e->set_params(p);
        e->set_chains(chains);
    }
    std::vector<float> m1(8 * 40), s1(8 * 40), m2(8 * 40), s2(8 * 40);
    const Stream stream = Stream::make(2, 0, Purpose::sample);
    cpu->chain_visibles(m1.data(), s1.data(), stream, 3);
    gpu->chain_visibles(m2.data(), s2.data(), stream, 3);
    EXPECT_LT(max_abs_diff(m1, m2), 1e-5);
    EXPECT_LE(mismatches(s1, s2), 2u);
}

TEST(CudaEngine, DetectsNonFiniteParameters) {
    SKIP_WITHOUT_GPU();
    ParamBuffer p = test::random_params({10, 5}, 1.0, 13);
    auto gpu = cuda_engine(p.shape);
    gpu->set_params(p);
    EXPECT_TRUE(gpu->params_finite());
    p.values[17] = std::nanf("");
    gpu->set_params(p);
    EXPECT_FALSE(gpu->params_finite());
}

// The step report (the update's own non-finite check, one copy kernel into mapped host
// memory) carries the step's sums, catches an update that diverged, and starts afresh:
// after finite parameters are restored the next report is finite again. Centered, the
// biases move after the update kernel, so the report scans instead.
void step_report_carries_the_sums(ChainKernel mode) {
    const RbmShape shape{96, 40};
    const ParamBuffer p = test::random_params(shape, 0.3, 41);
    const Dataset shard = test::dataset_of(grey_rows(48, 96, 42), 96);
    std::vector<uint32_t> order(48);
    std::iota(order.begin(), order.end(), 0u);
    const StepSettings s{.k = 2, .batch = 16, .chains = 16, .seed = 3};
    if (mode != ChainKernel::off) {  // else the engine would quietly take the cuBLAS sweeps
        ASSERT_TRUE(kernels::plan_gibbs_chain(96, 40, 16, 0).usable());
    }
    for (bool centered : {false, true}) {
        SCOPED_TRACE(centered ? "centered" : "plain");
        Pair pair = make_pair_with(p, shard, 16, mode);
        for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
            if (centered) e->set_offsets(Offsets{std::vector<float>(96, 0.25f), std::vector<float>(40, 0.5f)});
            e->set_epoch_order(order);
        }
        auto step = [&](uint64_t n, const UpdateRule& rule) {
            for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
                e->compute_gradient(order.data() + (n % 3) * 16, s, StepSpec{.step = n, .pl_bit = n % 96});
                e->apply_update(rule, 1.0f);
            }
            pair.gpu->start_step_report();
            return pair.gpu->finish_step_report();
        };
        const Engine::StepReport first = step(0, UpdateRule{});
        const MetricSums cpu_sums = pair.cpu->take_metric_sums();
        EXPECT_TRUE(first.params_finite);
        EXPECT_EQ(first.sums.examples, 16.0);
        EXPECT_NEAR(first.sums.pseudo_likelihood, cpu_sums.pseudo_likelihood,
                    1e-4 * std::abs(cpu_sums.pseudo_likelihood) + 1e-3);
        EXPECT_NEAR(first.sums.reconstruction_xent, cpu_sums.reconstruction_xent,
                    1e-5 * std::abs(cpu_sums.reconstruction_xent));
        EXPECT_FALSE(step(1, UpdateRule{.learning_rate = std::numeric_limits<float>::infinity()}).params_finite);
        for (Engine* e : {pair.cpu.get(), pair.gpu.get()}) {
            e->set_params(p);
            e->set_velocity(ParamBuffer(shape));
        }
        const Engine::StepReport after = step(2, UpdateRule{});
        EXPECT_TRUE(after.params_finite);
        EXPECT_EQ(after.sums.examples, 16.0);  // the sums were reset by each report
    }
}

TEST(CudaEngine, StepReportCarriesTheSumsAndCatchesDivergence) {
    SKIP_WITHOUT_GPU();
    step_report_carries_the_sums(ChainKernel::off);
    if (clusters_available()) step_report_carries_the_sums(ChainKernel::step);  // sums added by the fused kernel
}

TEST(CudaEngine, ShortTrainingRunAgreesWithCpu) {
    SKIP_WITHOUT_GPU();
    short_training_run_agrees(ChainKernel::off);
}

// A rank on a multi-GPU node takes GPU local_rank: every buffer, the stream and the
// handles must be on that GPU, whichever was current when the engine was made.
TEST(CudaEngine, RunsOnItsOwnGpu) {
    if (cuda_device_count() < 2) GTEST_SKIP() << "needs two visible GPUs";
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    const RbmShape shape{50, 30};
    EngineOptions o;
    o.device = DeviceKind::cuda;
    o.cuda_device = 1;
    auto gpu = make_engine(shape, o);
    int current = -1;
    ASSERT_EQ(cudaGetDevice(&current), cudaSuccess);
    EXPECT_EQ(current, 1);
    gpu->set_params(test::random_params(shape, 0.3, 31));
    gpu->set_velocity(ParamBuffer(shape));
    gpu->set_training_shard(test::dataset_of(test::random_binary_rows(10, 50, 32), 50));
    gpu->set_chains(std::vector<uint8_t>(10 * 30, 0));
    std::vector<uint32_t> order(10);
    std::iota(order.begin(), order.end(), 0u);
    gpu->set_epoch_order(order);
    const StepSettings s{.batch = 10, .chains = 10};
    gpu->compute_gradient(order.data(), s, StepSpec{});
    gpu->apply_update(UpdateRule{}, 1.0f);
    EXPECT_TRUE(gpu->params_finite());
}
