// GPU benchmark of the CUDA engine: PCD-k training-step time for batch sizes 20 to
// 4096 on a 784 x 500 RBM, and, in the same run, the time cuBLAS alone takes for the
// step's matrix products (same shapes, same handle settings), so the table shows what
// fraction of cuBLAS's own rate a whole step reaches; and the step again with the
// whole-chain cluster kernel where it takes the batch.
//
//   rbm_bench_cuda [--k 15] [--batches 20,64,256,1024,4096] [--seconds 1] [--tf32] [--no-chain-kernel]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine/cuda/cublas_gemm.hpp"
#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/device_buffer.hpp"
#include "engine/engine_factory.hpp"
#include "kernels/gibbs_chain.cuh"
#include "model/init.hpp"

using namespace rbm;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    int k = 15;
    std::vector<std::size_t> batches = {20, 64, 256, 1024, 4096};
    double seconds = 1.0;
    bool tf32 = false;
    bool chain_kernel = true;  // also time the cluster kernel's modes
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--k" && i + 1 < argc) o.k = std::atoi(argv[++i]);
        else if (a == "--seconds" && i + 1 < argc) o.seconds = std::atof(argv[++i]);
        else if (a == "--tf32") o.tf32 = true;
        else if (a == "--no-chain-kernel") o.chain_kernel = false;
        else if (a == "--batches" && i + 1 < argc) {
            o.batches.clear();
            std::stringstream list(argv[++i]);
            for (std::string item; std::getline(list, item, ',');) o.batches.push_back(std::stoul(item));
        } else {
            std::fprintf(stderr, "usage: rbm_bench_cuda [--k K] [--batches B1,B2,...] [--seconds S] [--tf32] "
                                 "[--no-chain-kernel]\n");
            std::exit(2);
        }
    }
    return o;
}

// Seconds per step of the engine (gradient + update), measured over >= `seconds`.
// Seconds per step; `engine_said`, when given, receives the engine's description after
// the steps (which cluster kernel it really used).
double time_engine_step(std::size_t batch, const Options& o, ChainKernel chain_kernel,
                        std::string* engine_said = nullptr) {
    const RbmShape shape{784, 500};
    EngineOptions eo;
    eo.device = DeviceKind::cuda;
    eo.tf32 = o.tf32;
    eo.chain_kernel = chain_kernel;
    auto engine = make_engine(shape, eo);
    engine->set_params(initial_params(shape, 1));
    engine->set_velocity(ParamBuffer(shape));
    Dataset shard;
    shard.n_cols = 784;
    shard.n_rows = std::max<std::size_t>(8192, 4 * batch);
    shard.values.resize(shard.n_rows * 784);
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (float& x : shard.values) x = u(gen);
    engine->set_training_shard(shard);
    engine->set_chains(std::vector<uint8_t>(batch * 500, 0));
    std::vector<uint32_t> order(shard.n_rows);
    std::iota(order.begin(), order.end(), 0u);
    engine->set_epoch_order(order);
    StepSettings s;
    s.k = o.k;
    s.batch = batch;
    s.chains = batch;
    const std::size_t per_epoch = shard.n_rows / batch;
    uint64_t step = 0;
    auto run = [&](uint64_t n) {
        for (uint64_t i = 0; i < n; ++i, ++step) {
            StepSpec spec;
            spec.step = step;
            spec.pl_bit = std::size_t(step % 784);
            engine->compute_gradient(order.data() + (step % per_epoch) * batch, s, spec);
            engine->apply_update(UpdateRule{}, 1.0f);
        }
        engine->take_metric_sums();  // synchronises
    };
    run(20);
    uint64_t n = 20;
    for (;;) {
        const auto t0 = Clock::now();
        run(n);
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        if (dt >= o.seconds) {
            if (engine_said) *engine_said = engine->describe();
            return dt / double(n);
        }
        n *= 2;
    }
}

// Seconds for the step's products alone on cuBLAS: positive phase, the monitoring pair,
// 2k Gibbs products and the gradient product, row-major as the engine issues them.
double time_cublas_products(std::size_t b, const Options& o, double& flops) {
    const std::size_t nv = 784, nh = 500, c = b;
    cublasHandle_t h;
    RBM_CUBLAS(cublasCreate(&h));
    RBM_CUBLAS(cublasSetMathMode(h, o.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    cuda::DeviceBuffer<float> W(nv * nh), V((b + c) * nv), H((b + c) * nh), G(nv * nh);
    RBM_CUDA(cudaMemset(W.data(), 0, W.bytes()));
    RBM_CUDA(cudaMemset(V.data(), 0, V.bytes()));
    RBM_CUDA(cudaMemset(H.data(), 0, H.bytes()));
    flops = 0;
    auto gemm = [&](bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a, const float* bb,
                    float* out) {
        cuda::row_major_gemm(h, ta, tb, m, n, k, a, bb, out);
        flops += 2.0 * double(m) * double(n) * double(k);
    };
    auto products = [&] {
        gemm(false, false, b, nh, nv, V.data(), W.data(), H.data());       // positive phase
        gemm(false, false, b, nh, nv, V.data(), W.data(), H.data());       // pseudo-likelihood (rounded data)
        gemm(false, true, b, nv, nh, H.data(), W.data(), V.data());        // reconstruction
        for (int j = 0; j < o.k; ++j) {
            gemm(false, true, c, nv, nh, H.data(), W.data(), V.data());
            gemm(false, false, c, nh, nv, V.data(), W.data(), H.data());
        }
        gemm(true, false, nv, nh, b + c, V.data(), H.data(), G.data());    // gradient
    };
    products();
    RBM_CUDA(cudaDeviceSynchronize());
    uint64_t n = 20;
    for (;;) {
        flops = 0;
        const auto t0 = Clock::now();
        for (uint64_t i = 0; i < n; ++i) products();
        RBM_CUDA(cudaDeviceSynchronize());
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        if (dt >= o.seconds) {
            flops /= double(n);
            cublasDestroy(h);
            return dt / double(n);
        }
        n *= 2;
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const Options o = parse(argc, argv);
        if (cuda_device_count() == 0) {
            std::fprintf(stderr, "rbm_bench_cuda: no CUDA GPU visible\n");
            return 1;
        }
        std::printf("# 784x500 RBM, PCD-%d, chains = batch, FP32%s\n", o.k, o.tf32 ? " (TF32 products)" : "");
        // step_us: the engine as a run gets it by default (a cuBLAS product and a sampling
        // kernel per half-step), beside cuBLAS alone on the same products.
        std::printf("%8s %12s %14s %14s %12s %10s\n", "batch", "step_us", "examples/s", "cublas_us", "step_TFLOPs",
                    "of_cublas");
        for (std::size_t b : o.batches) {
            double flops = 0;
            const double step = time_engine_step(b, o, ChainKernel::off), blas = time_cublas_products(b, o, flops);
            std::printf("%8zu %12.1f %14.0f %14.1f %12.2f %9.0f%%\n", b, step * 1e6, double(b) / step, blas * 1e6,
                        flops / step / 1e12, 100.0 * blas / step);
            std::fflush(stdout);
        }
        // Then, where it takes the batch, the same step with the whole-chain cluster kernel
        // running the sweeps (chain_us) or the whole step with the gradient formed in the
        // update (fused_us), EngineOptions::chain_kernel. Last, and each caught, so a
        // failing kernel costs only its own column.
        std::printf("# the cluster kernel: RBM_CUDA_CHAIN_KERNEL=1 (chain_us), =2 (fused_us)\n");
        std::printf("%8s %8s %12s %12s\n", "kernel", "batch", "chain_us", "fused_us");
        for (std::size_t b : o.chain_kernel ? o.batches : std::vector<std::size_t>{}) {
            if (!kernels::plan_gibbs_chain(784, 500, b, 0).usable()) continue;
            std::printf("%8s %8zu", "kernel", b);
            for (ChainKernel mode : {ChainKernel::sweeps, ChainKernel::step}) {
                try {
                    std::string said;
                    const double t = time_engine_step(b, o, mode, &said);
                    // A plan that did not fit times the cuBLAS sweeps: not this column's kernel.
                    const bool used = said.find(mode == ChainKernel::step ? "whole-step cluster kernel in use"
                                                                          : "whole-chain cluster kernel in use") !=
                                      std::string::npos;
                    if (used) std::printf(" %12.1f", t * 1e6);
                    else std::printf(" %12s", "n/a");
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "rbm_bench_cuda: batch %zu, chain kernel mode %d: %s\n", b, int(mode),
                                 e.what());
                    std::printf(" %12s", "fail");
                }
            }
            std::printf("\n");
            std::fflush(stdout);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rbm_bench_cuda: %s\n", e.what());
        return 1;
    }
}
