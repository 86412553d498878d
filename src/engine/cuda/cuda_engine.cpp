// The CUDA engine: parameters, gradients, velocity, persistent chains and this rank's
// shard live in GPU memory for the whole run. Products go through cuBLAS (FP32, or
// TF32 when asked); the elementwise work runs in the fused kernels of kernels/, drawing
// the same Philox numbers as the CPU engine. A whole gradient step (gather, positive
// phase, monitoring, k Gibbs sweeps, gradient) is captured once as a CUDA graph and
// replayed, with the step counter and batch cursor advanced on the device, so a step
// costs one launch and no host round trip. With the chain kernel asked for, a small
// batch's k sweeps are one node of that graph (kernels/gibbs_chain.cuh).
#include "engine/cuda/cuda_engine.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <iostream>
#include <vector>

#include "engine/cuda/cuda_check.hpp"
#include "engine/cuda/cublas_gemm.hpp"
#include "engine/cuda/device_buffer.hpp"
#include "kernels/gibbs_chain.cuh"
#include "kernels/rbm_kernels.cuh"

namespace rbm::cuda {

int visible_device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // no driver or no device: not an error here, just none
        return 0;
    }
    return count;
}

std::string device_count_problem() {
    int count = 0;
    const cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc == cudaSuccess) return count > 0 ? "" : "no device";
    cudaGetLastError();
    // Without a driver at all the runtime says the driver is too old: say what is missing.
    if (rc == cudaErrorInsufficientDriver) {
        void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
        if (!driver) return "no CUDA driver is installed (libcuda.so.1 not found)";
        dlclose(driver);
    }
    return cudaGetErrorString(rc);
}

std::string device_uuid(int device) {
    cudaDeviceProp prop{};
    RBM_CUDA(cudaGetDeviceProperties(&prop, device));
    char text[64];
    const auto* b = reinterpret_cast<const unsigned char*>(prop.uuid.bytes);
    std::snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                  b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return text;
}

std::string device_description(int device) {
    cudaDeviceProp prop{};
    RBM_CUDA(cudaGetDeviceProperties(&prop, device));
    return std::string(prop.name) + " (" + device_uuid(device) + ")";
}

namespace {

using DevF = DeviceBuffer<float>;

// What a captured step depends on; a change means capturing again.
struct CaptureKey {
    std::size_t batch = 0, chains = 0;
    int k = 0;
    Method method = Method::pcd;
    uint32_t seed = 0, rank = 0;
    bool measure = false, binary = false, centered = false;
    bool operator==(const CaptureKey&) const = default;
};

class CudaEngine final : public Engine {
public:
    // device_ is initialised (and made current) before any buffer is allocated.
    CudaEngine(RbmShape shape, int device, bool tf32, ChainKernel chain_kernel)
        : shape_(shape), device_(make_current(device)), tf32_(tf32), chain_kernel_(chain_kernel),
          params_(shape.total()), velocity_(shape.total()), grad_(shape.total() + shape.n_hidden), counters_(3),
          metric_sums_(3), fe_sum_(1), flag_(1), scan_flag_(1) {
        try {
            create_handles();
        } catch (...) {
            release_handles();  // a constructor that throws gets no destructor
            throw;
        }
    }

    ~CudaEngine() override { release_handles(); }

    std::string describe() const override {
        return "cuda " + device_description(device_) + ", cuBLAS " + (tf32_ ? "TF32" : "FP32") + ", CUDA graphs" +
               chain_kernel_text();
    }
    RbmShape shape() const override { return shape_; }

    // New parameters: an update's flag no longer describes them, the report scans them.
    void set_params(const ParamBuffer& p) override {
        upload(p, params_);
        RBM_CUDA(cudaMemsetAsync(flag_.data(), 0, flag_.bytes(), stream_));
        update_checked_ = false;
    }
    void get_params(ParamBuffer& p) const override { download(params_, p); }
    void set_velocity(const ParamBuffer& v) override { upload(v, velocity_); }
    void get_velocity(ParamBuffer& v) const override { download(velocity_, v); }

    void set_training_shard(const Dataset& shard) override {
        RBM_CHECK(shard.n_cols == shape_.n_visible,
                  "training data has " << shard.n_cols << " columns, the model " << shape_.n_visible);
        shard_.resize(shard.values.size());
        copy_to_device(shard.values.data(), shard_.data(), shard_.size());
        shard_rows_ = shard.n_rows;
        shard_binary_ = is_binary(shard);
        drop_graphs();
    }

    void set_epoch_order(const std::vector<uint32_t>& order) override {
        for (uint32_t r : order) RBM_CHECK(r < shard_rows_, "order names row " << r << " of " << shard_rows_);
        ensure_order_capacity(order.size());
        copy_to_device(order.data(), order_.data(), order.size());
        host_order_ = order.data();
        host_order_size_ = order.size();
    }

    void set_chains(const std::vector<uint8_t>& hidden) override {
        check_chain_state(hidden, shape_);
        const std::vector<float> as_floats(hidden.begin(), hidden.end());
        if (chains_.size() != as_floats.size()) drop_graphs();
        chains_.resize(as_floats.size());
        copy_to_device(as_floats.data(), chains_.data(), as_floats.size());
    }
    std::vector<uint8_t> get_chains() const override {
        std::vector<float> host(chains_.size());
        copy_to_host(chains_.data(), host.data(), host.size());
        return std::vector<uint8_t>(host.begin(), host.end());
    }

    void compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) override;
    void set_offsets(const Offsets& offsets) override {
        check_offsets(offsets, shape_);
        centered_ = !offsets.empty();
        if (!centered_) return;
        mu_.resize(shape_.n_visible);
        lambda_.resize(shape_.n_hidden);
        copy_to_device(offsets.visible.data(), mu_.data(), mu_.size());
        copy_to_device(offsets.hidden.data(), lambda_.data(), lambda_.size());
    }
    Offsets get_offsets() const override {
        Offsets o;
        if (!centered_) return o;
        o.visible.resize(shape_.n_visible);
        o.hidden.resize(shape_.n_hidden);
        copy_to_host(mu_.data(), o.visible.data(), o.visible.size());
        copy_to_host(lambda_.data(), o.hidden.data(), o.hidden.size());
        return o;
    }

    // A deferred gradient is formed now, by the products the step's graph left out (also
    // after the fused update, which leaves the step's rows as they were). A reducer that
    // asks once asks every step: from then on the graphs form the gradient themselves.
    GradientView gradient() override {
        if (gradient_deferred_) {
            enqueue_gradient_products(reserved_.batch, reserved_.chains, centered_);
            gradient_deferred_ = false;
            if (!gradient_wanted_) {
                gradient_wanted_ = true;
                drop_graphs();  // an exec still running is freed when it completes
            }
        }
        return {grad_.data(), shape_.total() + (centered_ ? shape_.n_hidden : 0), true, stream_};
    }
    void apply_update(const UpdateRule& rule, float scale) override;

    MetricSums take_metric_sums() override {
        double host[3];
        RBM_CUDA(cudaMemcpyAsync(host, metric_sums_.data(), sizeof host, cudaMemcpyDeviceToHost, stream_));
        RBM_CUDA(cudaMemsetAsync(metric_sums_.data(), 0, metric_sums_.bytes(), stream_));
        RBM_CUDA(cudaStreamSynchronize(stream_));
        return {host[0], host[1], host[2]};
    }

    // Its own flag: the step report's (flag_) gathers what the updates since the last
    // report saw, and a query in between must not clear it.
    bool params_finite() const override {
        int flag = 0;
        RBM_CUDA(cudaMemsetAsync(scan_flag_.data(), 0, sizeof(int), stream_));
        kernels::find_nonfinite(params_.data(), params_.size(), scan_flag_.data(), stream_);
        RBM_CUDA(cudaMemcpyAsync(&flag, scan_flag_.data(), sizeof flag, cudaMemcpyDeviceToHost, stream_));
        RBM_CUDA(cudaStreamSynchronize(stream_));
        return flag == 0;
    }

    // Enqueued after the step's update, whose kernel already flagged a non-finite new
    // parameter (unless the centered update moved the biases after it: then a scan): one
    // kernel copies the flag and the sums to mapped host memory and resets both, then an
    // event that finish_step_report() waits on. Two stream operations per step.
    void start_step_report() override {
        if (!update_checked_) kernels::find_nonfinite(params_.data(), params_.size(), flag_.data(), stream_);
        update_checked_ = false;
        kernels::copy_step_report(metric_sums_.data(), flag_.data(), report_device_, stream_);
        RBM_CUDA(cudaEventRecord(report_done_, stream_));
    }
    StepReport finish_step_report() override {
        RBM_CUDA(cudaEventSynchronize(report_done_));
        return {{report_host_->sums[0], report_host_->sums[1], report_host_->sums[2]}, report_host_->nonfinite == 0};
    }

    double free_energy_sum(const float* rows, std::size_t n) override;
    void gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                       uint64_t first_step) override;
    void chain_visibles(float* mean, float* sample, const Stream& stream, uint64_t step) override;

private:
    static int make_current(int device) {
        RBM_CUDA(cudaSetDevice(device));
        return device;
    }
    void create_handles() {
        RBM_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        RBM_CUBLAS(cublas().cublasCreate(&cublas_));
        RBM_CUBLAS(cublas().cublasSetStream(cublas_, stream_));
        RBM_CUBLAS(cublas().cublasSetMathMode(cublas_, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
        // A fixed workspace: cuBLAS must not allocate while a graph is being captured.
        workspace_.resize(32u << 20);
        RBM_CUBLAS(cublas().cublasSetWorkspace(cublas_, workspace_.data(), workspace_.bytes()));
        RBM_CUDA(cudaMemsetAsync(velocity_.data(), 0, velocity_.bytes(), stream_));
        RBM_CUDA(cudaMemsetAsync(counters_.data(), 0, counters_.bytes(), stream_));
        RBM_CUDA(cudaMemsetAsync(metric_sums_.data(), 0, metric_sums_.bytes(), stream_));
        RBM_CUDA(cudaMemsetAsync(flag_.data(), 0, flag_.bytes(), stream_));
        RBM_CUDA(cudaHostAlloc(reinterpret_cast<void**>(&report_host_), sizeof(kernels::StepReportCopy),
                               cudaHostAllocMapped));
        RBM_CUDA(cudaHostGetDevicePointer(reinterpret_cast<void**>(&report_device_), report_host_, 0));
        *report_host_ = kernels::StepReportCopy{};
        RBM_CUDA(cudaEventCreateWithFlags(&report_done_, cudaEventDisableTiming));
        RBM_CUDA(cudaStreamSynchronize(stream_));
    }
    void release_handles() {
        drop_graphs();
        if (report_done_) cudaEventDestroy(report_done_);
        if (report_host_) cudaFreeHost(report_host_);
        if (cublas_) cublas().cublasDestroy(cublas_);
        if (stream_) cudaStreamDestroy(stream_);
    }
    // Row-major C[m, n] = op(A) op(B).
    void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const float* a, const float* b,
              float* c) const {
        row_major_gemm(cublas_, ta, tb, m, n, k, a, b, c);
    }
    // y[cols] = sum_r x[r] A[r, :] for row-major A[rows, cols]
    void weighted_column_sums(const float* a, const float* x, std::size_t rows, std::size_t cols, float* y) const {
        const float one = 1.0f, zero = 0.0f;
        RBM_CUBLAS(cublas().cublasSgemv(cublas_, CUBLAS_OP_N, int(cols), int(rows), &one, a, int(cols), x, 1, &zero, y, 1));
    }

    void upload(const ParamBuffer& p, DevF& to) {
        RBM_CHECK(p.shape == shape_, "parameter shape " << p.shape.n_visible << "x" << p.shape.n_hidden
                                     << " does not match the engine's");
        copy_to_device(p.values.data(), to.data(), p.values.size());
    }
    void download(const DevF& from, ParamBuffer& p) const {
        p = ParamBuffer(shape_);
        copy_to_host(from.data(), p.values.data(), p.values.size());
    }
    // Copies go on stream_ itself: a plain cudaMemcpy runs on the legacy default stream,
    // which a non-blocking stream_ does not wait for, and from pageable memory it may
    // return before its DMA lands, so the next kernel on stream_ could read the old data.
    // Each returns with the copy complete (the host side may be reused at once).
    template <typename T>
    void copy_to_device(const T* host, T* device, std::size_t n) const {
        RBM_CUDA(cudaMemcpyAsync(device, host, n * sizeof(T), cudaMemcpyHostToDevice, stream_));
        RBM_CUDA(cudaStreamSynchronize(stream_));
    }
    template <typename T>
    void copy_to_host(const T* device, T* host, std::size_t n) const {
        RBM_CUDA(cudaMemcpyAsync(host, device, n * sizeof(T), cudaMemcpyDeviceToHost, stream_));
        RBM_CUDA(cudaStreamSynchronize(stream_));
    }
    void set_counter(int which, uint64_t value) { copy_to_device(&value, counters_.data() + which, 1); }
    // What the cluster kernel does: once a batch is reserved, what it was found to fit.
    std::string chain_kernel_text() const {
        if (chain_kernel_ == ChainKernel::off) return "";
        const char* asked = chain_kernel_ == ChainKernel::step ? "whole-step" : "whole-chain";
        if (reserved_.batch == 0) return std::string(", ") + asked + " cluster kernel asked for";
        if (fused_step_) return ", whole-step cluster kernel in use";
        if (chain_plan_.usable()) return ", whole-chain cluster kernel in use";
        return std::string(", ") + asked + " cluster kernel asked for, but the shape does not fit it: cuBLAS sweeps";
    }
    void ensure_order_capacity(std::size_t n) {
        if (order_.size() >= n) return;
        order_.resize(n);
        drop_graphs();
    }
    void reserve(const CaptureKey& key);
    void enqueue_step(const CaptureKey& key);
    void enqueue_gradient_products(std::size_t batch, std::size_t chains, bool centered);
    // The fused step's graph leaves the gradient out: apply_update forms and applies it in
    // one kernel, or gradient() forms it when a reducer asks (centered steps always form it).
    bool defers_gradient(const CaptureKey& key) const {
        return fused_step_ && key.k > 0 && !key.centered && !gradient_wanted_;
    }
    void enqueue_sweeps(const CaptureKey& key, float* h, float* vk, float* phk, const Stream& stream);
    void enqueue_measure(const CaptureKey& key);
    void drop_graphs() {
        for (auto& g : graphs_)
            if (g.exec) cudaGraphExecDestroy(g.exec);
        graphs_.clear();
    }

    RbmShape shape_;
    int device_;
    bool tf32_;
    ChainKernel chain_kernel_;            // asked for: used where chain_plan_ says the shape fits
    kernels::GibbsChainPlan chain_plan_;  // for reserved_'s chains, and batch when fused_step_
    bool fused_step_ = false;             // the step asked for, and the plan holds the batch too
    bool gradient_deferred_ = false;      // the last step's gradient is not formed yet
    bool gradient_wanted_ = false;        // gradient() formed a deferred one: stop deferring
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    DevF params_, velocity_, grad_;
    DeviceBuffer<uint64_t> counters_;  // [step, batch cursor, scratch step for sampling]
    mutable DeviceBuffer<double> metric_sums_;
    DeviceBuffer<double> fe_sum_;
    DeviceBuffer<int> flag_;                // set by the updates since the last step report
    mutable DeviceBuffer<int> scan_flag_;   // params_finite()'s
    bool update_checked_ = false;           // the last update flagged its own non-finite values
    kernels::StepReportCopy* report_host_ = nullptr;    // mapped pinned memory: the step report lands here
    kernels::StepReportCopy* report_device_ = nullptr;  // the same, as the device addresses it
    cudaEvent_t report_done_ = nullptr;
    DeviceBuffer<unsigned char> workspace_;
    DevF shard_;
    std::size_t shard_rows_ = 0;
    bool shard_binary_ = false;
    DeviceBuffer<uint32_t> order_;
    const uint32_t* host_order_ = nullptr;
    std::size_t host_order_size_ = 0;
    DevF chains_;
    DevF stack_v_, stack_h_, pre_h_, pre_v_, prob_v_, h_, pl_x_, pl_pre_, row_weights_, ones_;
    bool centered_ = false;
    DevF mu_, lambda_;  // centering offsets (when centered_)
    CaptureKey reserved_;
    uint64_t next_step_ = UINT64_MAX, next_cursor_ = UINT64_MAX;
    struct Captured {
        CaptureKey key;
        cudaGraphExec_t exec = nullptr;
    };
    std::vector<Captured> graphs_;
};

void CudaEngine::reserve(const CaptureKey& key) {
    if (key.batch == reserved_.batch && key.chains == reserved_.chains) return;
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, b = key.batch, c = key.chains;
    const std::size_t most = std::max(b, c);
    stack_v_.resize((b + c) * nv);
    stack_h_.resize((b + c) * nh);
    pre_h_.resize(most * nh);
    pre_v_.resize(most * nv);
    prob_v_.resize(most * nv);
    h_.resize(most * nh);
    pl_x_.resize(b * nv);
    pl_pre_.resize(b * nh);
    // Row weights of the bias gradient: +1/B for the data rows, -1/C for the chains'.
    std::vector<float> weights(b + c, 1.0f / float(b));
    std::fill(weights.begin() + long(b), weights.end(), -1.0f / float(c));
    row_weights_.resize(b + c);
    copy_to_device(weights.data(), row_weights_.data(), weights.size());
    const std::vector<float> ones(b + c, 1.0f);
    ones_.resize(b + c);
    copy_to_device(ones.data(), ones_.data(), ones.size());
    // The fused step holds the batch's rows as well; where they do not fit, the chain
    // kernel alone may still take the chains.
    fused_step_ = false;
    chain_plan_ = {};
    if (chain_kernel_ == ChainKernel::step) {
        chain_plan_ = kernels::plan_gibbs_chain(nv, nh, most, device_);
        fused_step_ = chain_plan_.usable();
    }
    if (chain_kernel_ != ChainKernel::off && !fused_step_) chain_plan_ = kernels::plan_gibbs_chain(nv, nh, c, device_);
    reserved_ = key;
    drop_graphs();
    // The kernel is a switch for benchmarks and checks (RBM_CUDA_CHAIN_KERNEL): say what it
    // took, since the run's first line was written before any batch was known.
    if (chain_kernel_ != ChainKernel::off)
        std::cerr << "rbm: cuda engine, batch " << b << ", " << c << " chains" << chain_kernel_text() << std::endl;
}

void CudaEngine::compute_gradient(const uint32_t* rows, const StepSettings& s, const StepSpec& spec) {
    RBM_CHECK(s.method != Method::pt, "the CUDA engine has no parallel tempering (--method pt): use --device cpu");
    const bool persistent = s.method == Method::pcd;
    CaptureKey key{s.batch, persistent ? s.chains : s.batch, s.k, s.method, s.seed, s.rank, spec.measure,
                   shard_binary_, centered_};
    RBM_CHECK(spec.pl_bit == spec.step % shape_.n_visible,
              "the CUDA engine flips bit step % n_visible for the pseudo-likelihood");
    if (persistent)
        RBM_CHECK(chains_.size() == key.chains * shape_.n_hidden, "PCD needs " << key.chains << " persistent chains");
    reserve(key);
    // Where the batch starts in the device-side order; rows outside the epoch order
    // (tests, tools) are uploaded as a one-batch order.
    uint64_t cursor = 0;
    if (host_order_ && rows >= host_order_ && rows + s.batch <= host_order_ + host_order_size_) {
        cursor = uint64_t(rows - host_order_);
    } else {
        ensure_order_capacity(s.batch);
        copy_to_device(rows, order_.data(), s.batch);
        host_order_ = nullptr;
        next_cursor_ = UINT64_MAX;
    }
    if (spec.step != next_step_) set_counter(0, spec.step);
    if (cursor != next_cursor_) set_counter(1, cursor);

    auto found = std::find_if(graphs_.begin(), graphs_.end(), [&](const Captured& g) { return g.key == key; });
    if (found == graphs_.end()) {
        cudaGraph_t graph = nullptr;
        RBM_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        try {
            enqueue_step(key);
        } catch (...) {
            // End the capture, or this thread's later copies and allocations fail with
            // "operation not permitted when stream is capturing" and hide the first error.
            if (cudaStreamEndCapture(stream_, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
            cudaGetLastError();
            throw;
        }
        RBM_CUDA(cudaStreamEndCapture(stream_, &graph));
        Captured c{key, nullptr};
        const cudaError_t rc = cudaGraphInstantiate(&c.exec, graph, 0);
        cudaGraphDestroy(graph);
        RBM_CUDA(rc);
        graphs_.push_back(c);
        found = graphs_.end() - 1;
    }
    RBM_CUDA(cudaGraphLaunch(found->exec, stream_));
    gradient_deferred_ = defers_gradient(key);
    next_step_ = spec.step + 1;
    next_cursor_ = cursor + s.batch;
}

// One gradient step, enqueued on stream_ (captured into a graph by the caller).
void CudaEngine::enqueue_step(const CaptureKey& key) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, b = key.batch, c = key.chains;
    const bool persistent = key.method == Method::pcd;
    const float* W = params_.data();
    const float* vbias = params_.data() + shape_.vbias_offset();
    const float* hbias = params_.data() + shape_.hbias_offset();
    const uint64_t* step = counters_.data();
    float* v0 = stack_v_.data();
    float* vk = v0 + b * nv;
    float* ph0 = stack_h_.data();
    float* phk = ph0 + b * nh;
    const Stream stream = Stream::make(key.seed, key.rank, Purpose::gibbs);

    float* h = persistent ? chains_.data() : h_.data();
    if (fused_step_ && key.k > 0) {
        // The batch's gather, positive phase and monitoring in the chain's kernel, which
        // leaves stack_h_ scaled by the gradient's row weights.
        const kernels::GibbsStepBatch batch{.shard = shard_.data(), .order = order_.data(),
                                            .cursor = counters_.data() + 1, .batch = b, .v0 = v0, .ph0 = ph0,
                                            .cd = !persistent, .measure = key.measure, .binary = key.binary,
                                            .sums = metric_sums_.data()};
        kernels::gibbs_chain(chain_plan_, W, vbias, hbias, h, vk, phk, c, nv, nh, key.k, stream, step, stream_, &batch);
    } else {
        kernels::gather_rows(shard_.data(), order_.data(), counters_.data() + 1, v0, b, nv, stream_);
        gemm(false, false, b, nh, nv, v0, W, pre_h_.data());
        kernels::bias_sigmoid_sample(pre_h_.data(), hbias, ph0, nullptr, b, nh, stream, step, 0, stream_);
        if (key.measure) enqueue_measure(key);
        if (!persistent) kernels::sample_bernoulli(ph0, h, b * nh, stream, step, 0, stream_);
        if (chain_plan_.usable() && key.k > 0)
            kernels::gibbs_chain(chain_plan_, W, vbias, hbias, h, vk, phk, c, nv, nh, key.k, stream, step, stream_);
        else
            enqueue_sweeps(key, h, vk, phk, stream);
        kernels::scale_rows(stack_h_.data(), b, c, nh, stream_);
    }
    if (!defers_gradient(key)) enqueue_gradient_products(b, c, key.centered);
    kernels::advance_step(counters_.data(), counters_.data() + 1, b, stream_);
}

// grad = [v0; vk]' [ph0 / B; -phk / C]; bias gradients as weighted column sums.
void CudaEngine::enqueue_gradient_products(std::size_t b, std::size_t c, bool centered) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    gemm(true, false, nv, nh, b + c, stack_v_.data(), stack_h_.data(), grad_.data());
    weighted_column_sums(stack_v_.data(), row_weights_.data(), b + c, nv, grad_.data() + shape_.vbias_offset());
    weighted_column_sums(stack_h_.data(), ones_.data(), b + c, nh, grad_.data() + shape_.hbias_offset());
    if (centered)  // <h>_data: the data rows of stack_h_ are already scaled by 1/B
        weighted_column_sums(stack_h_.data(), ones_.data(), b, nh, grad_.data() + shape_.total());
}

// The k Gibbs sweeps as cuBLAS products and sampling kernels, 4k graph nodes.
void CudaEngine::enqueue_sweeps(const CaptureKey& key, float* h, float* vk, float* phk, const Stream& stream) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, c = key.chains;
    const float* W = params_.data();
    const float* vbias = params_.data() + shape_.vbias_offset();
    const float* hbias = params_.data() + shape_.hbias_offset();
    const uint64_t* step = counters_.data();
    for (int j = 0; j < key.k; ++j) {
        gemm(false, true, c, nv, nh, h, W, pre_v_.data());
        kernels::bias_sigmoid_sample(pre_v_.data(), vbias, prob_v_.data(), vk, c, nv, stream, step,
                                     uint32_t(1 + 2 * j), stream_);
        gemm(false, false, c, nh, nv, vk, W, pre_h_.data());
        kernels::bias_sigmoid_sample(pre_h_.data(), hbias, phk, h, c, nh, stream, step, uint32_t(2 + 2 * j), stream_);
    }
}

// Row-major W [nv, nh] is column-major [nh, nv] to cuBLAS: W[i, j] is A(j, i), lda nh.
void CudaEngine::apply_update(const UpdateRule& rule, float scale) {
    const int nv = int(shape_.n_visible), nh = int(shape_.n_hidden);
    if (gradient_deferred_ && !centered_) {  // formed and applied in one kernel
        const kernels::fused::GradientUpdateArgs args{
            .v = stack_v_.data(), .h = stack_h_.data(), .row_weights = row_weights_.data(),
            .params = params_.data(), .velocity = velocity_.data(), .nonfinite = flag_.data(),
            .rows = int(reserved_.batch + reserved_.chains), .nv = nv, .nh = nh, .lr = rule.learning_rate,
            .momentum = rule.momentum, .decay = rule.weight_decay, .scale = scale};
        kernels::gradient_update(args, stream_);
        update_checked_ = true;  // gradient() may still form the step's gradient
        return;
    }
    gradient();  // formed, where it was deferred and offsets were set since
    float* g = grad_.data();
    const float minus_one = -1.0f, one = 1.0f;
    if (centered_) {  // dW -= mu dc' + db lambda'
        RBM_CUBLAS(cublas().cublasSger(cublas_, nh, nv, &minus_one, g + shape_.hbias_offset(), 1, mu_.data(), 1, g, nh));
        RBM_CUBLAS(cublas().cublasSger(cublas_, nh, nv, &minus_one, lambda_.data(), 1, g + shape_.vbias_offset(), 1, g, nh));
    }
    // The centered update moves the biases again below: the report scans after it instead.
    update_checked_ = !centered_;
    kernels::sgd_update(params_.data(), velocity_.data(), g, shape_.total(), shape_.weight_count(),
                        rule.learning_rate, rule.momentum, rule.weight_decay, scale,
                        update_checked_ ? flag_.data() : nullptr, stream_);
    if (!centered_) return;
    // b -= W_step lambda, c -= W_step' mu (W_step: the velocity just applied), then lambda moves.
    const float* v = velocity_.data();
    RBM_CUBLAS(cublas().cublasSgemv(cublas_, CUBLAS_OP_T, nh, nv, &minus_one, v, nh, lambda_.data(), 1, &one,
                           params_.data() + shape_.vbias_offset(), 1));
    RBM_CUBLAS(cublas().cublasSgemv(cublas_, CUBLAS_OP_N, nh, nv, &minus_one, v, nh, mu_.data(), 1, &one,
                           params_.data() + shape_.hbias_offset(), 1));
    kernels::moving_average(lambda_.data(), g + shape_.total(), rule.offset_rate, scale, shape_.n_hidden, stream_);
}

// The pseudo-likelihood bit and the reconstruction cross-entropy, summed on the device.
void CudaEngine::enqueue_measure(const CaptureKey& key) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, b = key.batch;
    const float* W = params_.data();
    const float* vbias = params_.data() + shape_.vbias_offset();
    const float* hbias = params_.data() + shape_.hbias_offset();
    const float* v0 = stack_v_.data();
    const float* x = v0;
    const float* pre = pre_h_.data();
    if (!key.binary) {
        kernels::round_binary(v0, pl_x_.data(), b * nv, stream_);
        gemm(false, false, b, nh, nv, pl_x_.data(), W, pl_pre_.data());
        x = pl_x_.data();
        pre = pl_pre_.data();
    }
    kernels::pseudo_likelihood(pre, x, W, vbias, hbias, b, nv, nh, counters_.data(), metric_sums_.data(), stream_);
    gemm(false, true, b, nv, nh, stack_h_.data(), W, pre_v_.data());
    kernels::reconstruction_xent(pre_v_.data(), vbias, v0, b, nv, metric_sums_.data(), stream_);
}

double CudaEngine::free_energy_sum(const float* rows, std::size_t n) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, chunk = 1024;
    DevF x(std::min(n, chunk) * nv), pre(std::min(n, chunk) * nh);
    RBM_CUDA(cudaMemsetAsync(fe_sum_.data(), 0, sizeof(double), stream_));
    for (std::size_t start = 0; start < n; start += chunk) {
        const std::size_t m = std::min(chunk, n - start);
        copy_to_device(rows + start * nv, x.data(), m * nv);
        gemm(false, false, m, nh, nv, x.data(), params_.data(), pre.data());
        kernels::free_energy(pre.data(), x.data(), params_.data() + shape_.vbias_offset(),
                             params_.data() + shape_.hbias_offset(), m, nv, nh, fe_sum_.data(), stream_);
    }
    double sum = 0;
    copy_to_host(fe_sum_.data(), &sum, 1);
    return sum;
}

void CudaEngine::gibbs_visible(float* v, float* mean, std::size_t n, int steps, const Stream& stream,
                               uint64_t first_step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden;
    const float* W = params_.data();
    DevF dv(n * nv), dmean(n * nv), pre_h(n * nh), prob_h(n * nh), h(n * nh), pre_v(n * nv);
    copy_to_device(v, dv.data(), n * nv);
    // The step counter lives on the device and advances there: no wait between Gibbs steps.
    set_counter(2, first_step);
    uint64_t* step = counters_.data() + 2;
    for (int s = 0; s < steps; ++s) {
        gemm(false, false, n, nh, nv, dv.data(), W, pre_h.data());
        kernels::bias_sigmoid_sample(pre_h.data(), params_.data() + shape_.hbias_offset(), prob_h.data(), h.data(), n,
                                     nh, stream, step, 0, stream_);
        gemm(false, true, n, nv, nh, h.data(), W, pre_v.data());
        kernels::bias_sigmoid_sample(pre_v.data(), params_.data() + shape_.vbias_offset(), dmean.data(), dv.data(), n,
                                     nv, stream, step, 1, stream_);
        kernels::advance_step(step, nullptr, 0, stream_);
    }
    copy_to_host(dv.data(), v, n * nv);
    if (steps > 0) copy_to_host(dmean.data(), mean, n * nv);  // as the CPU: no sweep, no mean
}

void CudaEngine::chain_visibles(float* mean, float* sample, const Stream& stream, uint64_t step) {
    const std::size_t nv = shape_.n_visible, nh = shape_.n_hidden, n = chains_.size() / nh;
    if (n == 0) return;  // no chains (CD): nothing to draw, and an empty grid is no launch
    DevF pre_v(n * nv), dmean(n * nv), dsample(n * nv);
    set_counter(2, step);
    gemm(false, true, n, nv, nh, chains_.data(), params_.data(), pre_v.data());
    kernels::bias_sigmoid_sample(pre_v.data(), params_.data() + shape_.vbias_offset(), dmean.data(), dsample.data(),
                                 n, nv, stream, counters_.data() + 2, 0, stream_);
    copy_to_host(dmean.data(), mean, n * nv);
    copy_to_host(dsample.data(), sample, n * nv);
}

}  // namespace

std::unique_ptr<Engine> make_cuda_engine(RbmShape shape, int device, bool tf32, ChainKernel chain_kernel) {
    return std::make_unique<CudaEngine>(shape, device, tf32, chain_kernel);
}

}  // namespace rbm::cuda
