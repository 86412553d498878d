// The GPU suite's tests of the whole-chain cluster kernel (kernels/gibbs_chain.cuh): its
// plan, its steps against the CPU engine, bit for bit against the cuBLAS path where the
// weights and data make every sum exact, the fused update against forming the gradient,
// and a short training run; each for the sweeps and for the fused step. They skip without
// a GPU, and without thread-block clusters (sm_90).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "gpu_test_support.hpp"

using namespace rbm;
using namespace rbm::test;

namespace {

// The whole-chain cluster kernel, asked for (RBM_CUDA_CHAIN_KERNEL=1 in a run).
#define SKIP_WITHOUT_CLUSTERS()                                                              \
    SKIP_WITHOUT_GPU();                                                                      \
    if (!clusters_available()) GTEST_SKIP() << "thread-block clusters need sm_90 or newer (or RBM_GPU_NO_CHAIN_KERNEL=1)"

TEST(CudaChainKernel, PlansTheTutorialShape) {
    SKIP_WITHOUT_CLUSTERS();
    const kernels::GibbsChainPlan plan = kernels::plan_gibbs_chain(784, 500, 20, 0);
    ASSERT_TRUE(plan.usable());
    std::printf("784x500, 20 chains: %d clusters of %d blocks, at most %d rows each, %zu bytes of shared memory\n",
                plan.clusters, plan.cluster_size, plan.rows_per_cluster, plan.shared_bytes);
    EXPECT_GE(plan.clusters * plan.rows_per_cluster, 20);
    EXPECT_FALSE(kernels::plan_gibbs_chain(784, 500, 4096, 0).usable());  // too many rows: the cuBLAS sweeps
}

// The engine says which path a batch took: runs and the benchmark tell the kernel's
// numbers from the cuBLAS sweeps' by it.
TEST(CudaChainKernel, DescribesThePathTaken) {
    SKIP_WITHOUT_CLUSTERS();
    for (auto [batch, expected] : {std::pair<std::size_t, const char*>{16, "whole-step cluster kernel in use"},
                                   {4096, "does not fit it: cuBLAS sweeps"}}) {
        const RbmShape shape{784, 500};
        const Dataset shard = test::dataset_of(grey_rows(batch, 784, 3), 784);
        Pair pair = make_pair_with(initial_params(shape, 3), shard, batch, ChainKernel::step);
        EXPECT_NE(pair.gpu->describe().find("whole-step cluster kernel asked for"), std::string::npos);
        std::vector<uint32_t> order(batch);
        std::iota(order.begin(), order.end(), 0u);
        pair.gpu->compute_gradient(order.data(), StepSettings{.k = 1, .batch = batch, .chains = batch}, StepSpec{});
        EXPECT_NE(pair.gpu->describe().find(expected), std::string::npos) << pair.gpu->describe();
    }
}

TEST(CudaChainKernel, StepsMatchCpu) {
    SKIP_WITHOUT_CLUSTERS();
    for (ChainKernel mode : {ChainKernel::sweeps, ChainKernel::step}) {
        SCOPED_TRACE(mode == ChainKernel::step ? "the fused step" : "the sweeps");
        compare_step(Method::pcd, 3, 16, {96, 40}, mode);
        compare_step(Method::cd, 1, 16, {96, 40}, mode);
        compare_step(Method::pcd, 2, 20, {786, 102}, mode);
        compare_step(Method::cd, 1, 33, {786, 102}, mode);  // 33 rows: clusters of 4 and 5
    }
}

// Rows of multiples of 1/4: with dyadic weights every pre-activation of the batch is
// exact too, so the fused step's positive phase equals cuBLAS's bit for bit.
std::vector<float> quarter_rows(std::size_t n, std::size_t cols, unsigned seed) {
    std::vector<float> rows = test::random_binary_rows(n, cols, seed);
    for (std::size_t e = 0; e < rows.size(); ++e) rows[e] = rows[e] * 0.5f + 0.25f * float((e * 7) % 3);
    return rows;
}

// Weights that are multiples of 1/64 make every pre-activation exact, so the kernel's
// chains, samples and gradient must equal the cuBLAS sweeps' bit for bit: PCD-15 at the
// tutorial's shape and batch, CD-1 on a shape that cuts unevenly, PCD with fewer chains
// than rows, binary data (the pseudo-likelihood then reuses the positive phase's sums).
// The fused step's monitoring sums agree to rounding (another order); the middle step
// is not monitored.
void chain_kernel_equals_sweeps(ChainKernel mode, Method method, int k, std::size_t batch, std::size_t chains,
                                RbmShape shape, bool binary = false) {
    SCOPED_TRACE(testing::Message() << shape.n_visible << "x" << shape.n_hidden << " batch " << batch << " chains "
                                    << chains << " k " << k << (mode == ChainKernel::step ? " fused step" : "")
                                    << (binary ? " binary" : ""));
    ASSERT_TRUE(kernels::plan_gibbs_chain(shape.n_visible, shape.n_hidden, std::max(batch, chains), 0).usable());
    const ParamBuffer p = test::dyadic_params(shape, test::dyadic_spread(shape), 21);
    const std::size_t rows = 3 * batch;
    const Dataset shard = test::dataset_of(
        binary ? test::random_binary_rows(rows, shape.n_visible, 22) : quarter_rows(rows, shape.n_visible, 22),
        shape.n_visible);
    const std::vector<float> start = test::random_binary_rows(chains, shape.n_hidden, 23);
    auto kernel = cuda_engine(shape, mode), sweeps = cuda_engine(shape, ChainKernel::off);
    std::vector<uint32_t> order(rows);
    std::iota(order.begin(), order.end(), 0u);
    for (Engine* e : {kernel.get(), sweeps.get()}) {
        e->set_params(p);
        e->set_velocity(ParamBuffer(shape));
        e->set_training_shard(shard);
        e->set_chains(std::vector<uint8_t>(start.begin(), start.end()));
        e->set_epoch_order(order);
    }
    const StepSettings s{.method = method, .k = k, .batch = batch, .chains = chains, .seed = 4};
    for (uint64_t step = 0; step < 3; ++step) {
        const StepSpec spec{.step = step, .pl_bit = std::size_t(step % shape.n_visible), .measure = step != 1};
        for (Engine* e : {kernel.get(), sweeps.get()}) e->compute_gradient(order.data() + step * batch, s, spec);
        const std::vector<uint8_t> a = kernel->get_chains(), b = sweeps->get_chains();
        EXPECT_EQ(mismatches(a, b), 0u) << "step " << step;
        const std::size_t on = std::size_t(std::count(a.begin(), a.end(), uint8_t(1)));
        EXPECT_GT(on, a.size() / 20) << "step " << step;
        EXPECT_LT(on, a.size() - a.size() / 20) << "step " << step;
        EXPECT_EQ(formed_gradient(*kernel), formed_gradient(*sweeps)) << "step " << step;
        const MetricSums mk = kernel->take_metric_sums(), ms = sweeps->take_metric_sums();
        EXPECT_EQ(mk.examples, spec.measure ? double(batch) : 0.0);
        EXPECT_EQ(mk.examples, ms.examples);
        EXPECT_NEAR(mk.pseudo_likelihood, ms.pseudo_likelihood, 1e-9 * std::abs(ms.pseudo_likelihood));
        EXPECT_NEAR(mk.reconstruction_xent, ms.reconstruction_xent, 1e-6 * std::abs(ms.reconstruction_xent));
    }
}

TEST(CudaChainKernel, EqualsTheCublasSweepsBitForBit) {
    SKIP_WITHOUT_CLUSTERS();
    for (ChainKernel mode : {ChainKernel::sweeps, ChainKernel::step}) {
        chain_kernel_equals_sweeps(mode, Method::pcd, 15, 20, 20, {784, 500});
        chain_kernel_equals_sweeps(mode, Method::cd, 1, 33, 33, {786, 102});
        chain_kernel_equals_sweeps(mode, Method::pcd, 2, 20, 7, {786, 102});
        chain_kernel_equals_sweeps(mode, Method::pcd, 3, 20, 20, {784, 500}, true);
    }
}

// The fused step forms and applies its gradient in one kernel where no reducer asks for
// it; that must leave the parameters and velocity of forming it (gradient(), cuBLAS)
// and then updating, to the rounding of the gradient's sums, with momentum and decay:
// at the tutorial's shape, on rows that are not whole Quads, for CD and fewer chains.
void fused_update_equals_forming(Method method, std::size_t batch, std::size_t chains, RbmShape shape) {
    SCOPED_TRACE(testing::Message() << shape.n_visible << "x" << shape.n_hidden << " batch " << batch << " chains "
                                    << chains);
    ASSERT_TRUE(kernels::plan_gibbs_chain(shape.n_visible, shape.n_hidden, std::max(batch, chains), 0).usable());
    const ParamBuffer p = initial_params(shape, 3);
    const Dataset shard = test::dataset_of(grey_rows(3 * batch, shape.n_visible, 31), shape.n_visible);
    std::vector<uint32_t> order(3 * batch);
    std::iota(order.begin(), order.end(), 0u);
    auto fused = cuda_engine(shape, ChainKernel::step), formed = cuda_engine(shape, ChainKernel::step);
    ParamBuffer velocity(shape);
    for (std::size_t e = 0; e < velocity.values.size(); ++e) velocity.values[e] = 0.01f * float(e % 7) - 0.03f;
    for (Engine* e : {fused.get(), formed.get()}) {
        e->set_params(p);
        e->set_velocity(velocity);
        e->set_training_shard(shard);
        e->set_chains(std::vector<uint8_t>(chains * shape.n_hidden, 0));
        e->set_epoch_order(order);
    }
    const StepSettings s{.method = method, .k = 3, .batch = batch, .chains = chains, .seed = 8};
    const UpdateRule rule{.learning_rate = 0.1f, .momentum = 0.5f, .weight_decay = 0.001f};
    for (Engine* e : {fused.get(), formed.get()}) e->compute_gradient(order.data(), s, StepSpec{});
    formed->gradient();
    for (Engine* e : {fused.get(), formed.get()}) e->apply_update(rule, 1.0f);
    ParamBuffer a(shape), b(shape), va(shape), vb(shape);
    fused->get_params(a);
    formed->get_params(b);
    fused->get_velocity(va);
    formed->get_velocity(vb);
    EXPECT_LT(max_abs_diff(a.values, b.values), 1e-6);
    EXPECT_LT(max_abs_diff(va.values, vb.values), 1e-6);
    EXPECT_GT(max_abs_diff(a.values, p.values), 1e-3);  // the update did something
    // The step's gradient can still be formed after the fused update, and is the same.
    EXPECT_EQ(formed_gradient(*fused), formed_gradient(*formed));
}

TEST(CudaChainKernel, FusedUpdateEqualsFormingTheGradient) {
    SKIP_WITHOUT_CLUSTERS();
    fused_update_equals_forming(Method::pcd, 20, 20, {784, 500});
    fused_update_equals_forming(Method::cd, 33, 33, {786, 102});
    fused_update_equals_forming(Method::pcd, 20, 7, {786, 102});
}

TEST(CudaChainKernel, ShortTrainingRunAgreesWithCpu) {
    SKIP_WITHOUT_CLUSTERS();
    short_training_run_agrees(ChainKernel::sweeps);
    short_training_run_agrees(ChainKernel::step);
}

}  // namespace
