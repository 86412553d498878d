// The GPU suite, shaped like ggml's test-backend-ops: every CUDA engine operation
// against the CPU engine on the same inputs and the same Philox streams. Binary
// samples must be identical except where a probability lies within rounding of its
// uniform draw; means, gradients and metrics agree to float tolerance. Without a
// visible GPU every test skips and says so. The whole-chain cluster kernel
// (kernels/gibbs_chain.cuh) is checked the same way, and bit for bit against the cuBLAS
// sweeps where the weights make every sum exact.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/engine.hpp"
#include "engine/engine_factory.hpp"
#include "kernels/gibbs_chain.cuh"
#include "model/init.hpp"
#include "../unit/test_models.hpp"

using namespace rbm;

namespace {

#define SKIP_WITHOUT_GPU()                                                               \
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA GPU visible: GPU suite skipped"

std::unique_ptr<Engine> cuda_engine(RbmShape shape, ChainKernel chain_kernel = ChainKernel::off) {
    EngineOptions o;
    o.device = DeviceKind::cuda;
    o.chain_kernel = chain_kernel;
    return make_engine(shape, o);
}

// Real-valued rows in [0, 1] (exercises the rounding path of the pseudo-likelihood).
std::vector<float> grey_rows(std::size_t n, std::size_t cols, unsigned seed) {
    std::vector<float> rows = test::random_binary_rows(n, cols, seed);
    for (std::size_t e = 0; e < rows.size(); ++e) rows[e] = rows[e] * 0.6f + 0.3f * float((e * 7) % 5) / 4.0f;
    return rows;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (std::size_t e = 0; e < a.size(); ++e) worst = std::max(worst, double(std::abs(a[e] - b[e])));
    return worst;
}

std::size_t mismatches(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    std::size_t n = 0;
    for (std::size_t e = 0; e < a.size(); ++e) n += a[e] != b[e];
    return n;
}

struct Pair {
    std::unique_ptr<Engine> cpu, gpu;
};

Pair make_pair_with(const ParamBuffer& p, const Dataset& shard, std::size_t chains,
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
std::vector<float> gpu_gradient(Engine& gpu) {
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
std::vector<float> formed_gradient(Engine& gpu) {
    const GradientView g = gpu.gradient();
    std::vector<float> host(g.count);
    EXPECT_EQ(cudaStreamSynchronize(static_cast<cudaStream_t>(g.stream)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), g.data, g.count * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
}

bool clusters_available() {
    int major = 0;
    return cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess && major >= 9;
}

}  // namespace

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

// Shapes whose rows are not whole Philox blocks (786, 102) check the draws' numbering
// across rows.
void compare_step(Method method, int k, std::size_t batch = 16, RbmShape shape = {96, 40},
                  ChainKernel chain_kernel = ChainKernel::off) {
    // Weights scaled so pre-activations stay about as large as at 96 visible units.
    const ParamBuffer p = test::random_params(shape, 0.3 * std::sqrt(96.0 / double(shape.n_visible)), 3);
    const std::size_t nv = shape.n_visible, rows = 4 * batch;
    const Dataset shard = test::dataset_of(grey_rows(rows, nv, 4), nv);
    if (chain_kernel != ChainKernel::off) {  // else the engine would quietly take the cuBLAS sweeps
        ASSERT_TRUE(kernels::plan_gibbs_chain(shape.n_visible, shape.n_hidden, batch, 0).usable());
    }
    Pair pair = make_pair_with(p, shard, batch, chain_kernel);
    StepSettings s;
    s.method = method;
    s.k = k;
    s.batch = batch;
    s.chains = batch;
    s.seed = 9;
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
    StepSettings s;
    s.method = Method::cd;
    s.k = 1;
    s.batch = 10;
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
    StepSettings s;
    s.k = 2;
    s.batch = 10;
    s.chains = 10;
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
    EXPECT_LE(max_abs_diff(s1, s2) > 0 ? 1 : 0, 1);
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

// A short training run on the GPU and on the CPU from the same start agrees: the
// runs differ only by rare near-tie samples, which move W by lr/B each.
void short_training_run_agrees(ChainKernel chain_kernel) {
    const RbmShape shape{784, 100};
    const ParamBuffer p = initial_params(shape, 1);
    const Dataset shard = test::dataset_of(grey_rows(400, 784, 14), 784);
    if (chain_kernel != ChainKernel::off) {
        ASSERT_TRUE(kernels::plan_gibbs_chain(784, 100, 20, 0).usable());
    }
    Pair pair = make_pair_with(p, shard, 20, chain_kernel);
    std::vector<uint32_t> order(400);
    std::iota(order.begin(), order.end(), 0u);
    StepSettings s;
    s.k = 5;
    s.batch = 20;
    s.chains = 20;
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
    StepSettings s;
    s.batch = 10;
    s.chains = 10;
    gpu->compute_gradient(order.data(), s, StepSpec{});
    gpu->apply_update(UpdateRule{}, 1.0f);
    EXPECT_TRUE(gpu->params_finite());
}

// The whole-chain cluster kernel, asked for (RBM_CUDA_CHAIN_KERNEL=1 in a run).
#define SKIP_WITHOUT_CLUSTERS()                                                              \
    SKIP_WITHOUT_GPU();                                                                      \
    if (!clusters_available()) GTEST_SKIP() << "thread-block clusters need sm_90 or newer"

TEST(CudaChainKernel, PlansTheTutorialShape) {
    SKIP_WITHOUT_CLUSTERS();
    const kernels::GibbsChainPlan plan = kernels::plan_gibbs_chain(784, 500, 20, 0);
    ASSERT_TRUE(plan.usable());
    std::printf("784x500, 20 chains: %d clusters of %d blocks, at most %d rows each, %zu bytes of shared memory\n",
                plan.clusters, plan.cluster_size, plan.rows_per_cluster, plan.shared_bytes);
    EXPECT_GE(plan.clusters * plan.rows_per_cluster, 20);
    EXPECT_FALSE(kernels::plan_gibbs_chain(784, 500, 4096, 0).usable());  // too many rows: the cuBLAS sweeps
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
