// GPU annealing chains (see cuda_annealing_chains.hpp): the CPU's CpuAnnealingChains
// (src/eval/ais.cpp) step for step, with products from cuBLAS and the loops as kernels.
#include "eval/cuda/cuda_annealing_chains.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <vector>

#include "engine/cuda/cublas_gemm.hpp"
#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/device_buffer.hpp"
#include "kernels/ais_kernels.cuh"

namespace rbm::eval {
namespace {

using cuda::DeviceBuffer;

template <typename T>
void upload(const std::vector<T>& host, DeviceBuffer<T>& device, cudaStream_t stream) {
    device.resize(host.size());
    RBM_CUDA(cudaMemcpyAsync(device.data(), host.data(), device.bytes(), cudaMemcpyHostToDevice, stream));
}

template <typename T>
std::vector<T> download(const DeviceBuffer<T>& device, cudaStream_t stream) {
    std::vector<T> host(device.size());
    RBM_CUDA(cudaMemcpyAsync(host.data(), device.data(), device.bytes(), cudaMemcpyDeviceToHost, stream));
    RBM_CUDA(cudaStreamSynchronize(stream));
    return host;
}

// What every batch shares: the RBM (W, b, c), the base model, a stream and a handle.
struct GpuModel {
    std::size_t nv = 0, nh = 0;
    int device = 0;
    cudaStream_t stream = nullptr;
    cublasHandle_t cublas = nullptr;
    DeviceBuffer<float> W, vbias, hbias;
    DeviceBuffer<double> base_b, b_minus_base;

    GpuModel(const ParamBuffer& p, const BaseModel& base, int device_index)
        : nv(p.shape.n_visible), nh(p.shape.n_hidden), device(device_index) {
        RBM_CHECK(base.vbias.size() == nv, "base model has " << base.vbias.size() << " visible units, the RBM " << nv);
        try {
            RBM_CUDA(cudaSetDevice(device));
            RBM_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
            RBM_CUBLAS(cuda::cublas().cublasCreate(&cublas));
            RBM_CUBLAS(cuda::cublas().cublasSetStream(cublas, stream));
            RBM_CUBLAS(cuda::cublas().cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
            upload(std::vector<float>(p.W(), p.W() + nv * nh), W, stream);
            upload(std::vector<float>(p.vbias(), p.vbias() + nv), vbias, stream);
            upload(std::vector<float>(p.hbias(), p.hbias() + nh), hbias, stream);
            std::vector<double> minus(nv);
            for (std::size_t i = 0; i < nv; ++i) minus[i] = double(p.vbias()[i]) - base.vbias[i];
            upload(base.vbias, base_b, stream);
            upload(minus, b_minus_base, stream);
            RBM_CUDA(cudaStreamSynchronize(stream));
        } catch (...) {
            release();
            throw;
        }
    }
    GpuModel(const GpuModel&) = delete;
    GpuModel& operator=(const GpuModel&) = delete;
    ~GpuModel() { release(); }

private:
    void release() noexcept {
        if (cublas) cuda::cublas().cublasDestroy(cublas);
        if (stream) cudaStreamDestroy(stream);
        cublas = nullptr;
        stream = nullptr;
    }
};

class CudaAnnealingChains final : public AnnealingChains {
public:
    CudaAnnealingChains(std::shared_ptr<const GpuModel> model, uint32_t seed, const std::vector<ChainId>& chains)
        : m_(std::move(model)), count_(chains.size()), seed_(seed) {
        check_chain_ids(chains);
        RBM_CUDA(cudaSetDevice(m_->device));  // the model's GPU, whichever the caller left current
        std::vector<uint32_t> index(count_), seed_index(count_);
        for (std::size_t r = 0; r < count_; ++r) {
            index[r] = chains[r].index;
            seed_index[r] = chains[r].seed_index;
        }
        upload(index, index_, m_->stream);
        upload(seed_index, seed_index_, m_->stream);
        x_.resize(count_ * m_->nv);
        pre_v_.resize(count_ * m_->nv);
        a_.resize(count_ * m_->nh);
        h_.resize(count_ * m_->nh);
        vb_.resize(count_);
        acc_.resize(count_);
        // Zero until a start, as the CPU chains are.
        RBM_CUDA(cudaMemsetAsync(x_.data(), 0, x_.bytes(), m_->stream));
        RBM_CUDA(cudaMemsetAsync(a_.data(), 0, a_.bytes(), m_->stream));
        RBM_CUDA(cudaMemsetAsync(vb_.data(), 0, vb_.bytes(), m_->stream));
        RBM_CUDA(cudaMemsetAsync(acc_.data(), 0, acc_.bytes(), m_->stream));
        RBM_CUDA(cudaStreamSynchronize(m_->stream));
    }

    std::size_t size() const override { return count_; }

    void start_from_base() override {
        kernels::ais_sample_base(x_.data(), m_->base_b.data(), count_, m_->nv, keys(), uint32_t(AisDraw::base),
                                 m_->stream);
        restart();
    }

    void start_from_rows(const float* rows) override {
        for (std::size_t e = 0; e < count_ * m_->nv; ++e)
            RBM_CHECK(rows[e] == 0.0f || rows[e] == 1.0f, "annealing chains start from binary states");
        RBM_CUDA(cudaMemcpyAsync(x_.data(), rows, x_.bytes(), cudaMemcpyHostToDevice, m_->stream));
        restart();
    }

    void add_log_ratio(double beta_to, double beta_from) override {
        kernels::ais_add_log_ratio(a_.data(), vb_.data(), acc_.data(), beta_to, beta_from, count_, m_->nh,
                                   m_->stream);
    }

    void gibbs_sweep(double beta, uint64_t step, AisDraw hidden_kind, AisDraw visible_kind) override {
        kernels::ais_sample_hidden(a_.data(), h_.data(), beta, count_, m_->nh, keys(), uint32_t(hidden_kind), step,
                                   m_->stream);
        cuda::row_major_gemm(m_->cublas, false, true, count_, m_->nv, m_->nh, h_.data(), m_->W.data(),
                             pre_v_.data());
        kernels::ais_sample_visible(pre_v_.data(), m_->vbias.data(), m_->base_b.data(), x_.data(), beta, count_,
                                    m_->nv, keys(), uint32_t(visible_kind), step, m_->stream);
        refresh_hidden_input();
    }

    std::vector<double> accumulated() const override { return download(acc_, m_->stream); }
    std::vector<float> visible() const override { return download(x_, m_->stream); }

private:
    kernels::ChainKeys keys() const { return {index_.data(), seed_index_.data(), seed_}; }

    void restart() {
        RBM_CUDA(cudaMemsetAsync(acc_.data(), 0, acc_.bytes(), m_->stream));
        refresh_hidden_input();
    }

    // a = c + xW and vb_r = x_r.(b - b_A).
    void refresh_hidden_input() {
        cuda::row_major_gemm(m_->cublas, false, false, count_, m_->nh, m_->nv, x_.data(), m_->W.data(), a_.data());
        kernels::ais_finish_hidden_input(a_.data(), m_->hbias.data(), x_.data(), m_->b_minus_base.data(),
                                         vb_.data(), count_, m_->nv, m_->nh, m_->stream);
    }

    std::shared_ptr<const GpuModel> m_;
    std::size_t count_;
    uint32_t seed_;
    DeviceBuffer<uint32_t> index_, seed_index_;
    DeviceBuffer<float> x_, pre_v_, a_, h_;
    DeviceBuffer<double> vb_, acc_;
};

}  // namespace

ChainsFactory cuda_chains_factory(const ParamBuffer& params, const BaseModel& base, int device) {
    auto model = std::make_shared<const GpuModel>(params, base, device);
    return [model](uint32_t seed, std::vector<ChainId> chains) -> std::unique_ptr<AnnealingChains> {
        return std::make_unique<CudaAnnealingChains>(model, seed, chains);
    };
}

}  // namespace rbm::eval
