// NCCL gradient allreduce. The unique id comes from rank 0 over MPI; one communicator
// for the run; ncclAllReduce sums the gradient in place on the engine's stream. A
// watchdog thread polls ncclCommGetAsyncError and a deadline on the last allreduce:
// on an error or a stall it aborts the communicator and ends the whole job
// (Communicator::end_job_from_thread) rather than letting the ranks hang. ncclCommAbort
// itself has been seen to hang (NVIDIA/nccl issues 549, 992, 1777), so every abort runs
// under a timer that ends the process regardless.
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "dist/cuda/device_reducers.hpp"
#include "engine/cuda/cuda_check.hpp"
#include "util/clock.hpp"

#define RBM_NCCL(call)                                                                     \
    do {                                                                                   \
        ncclResult_t rbm_nccl_rc_ = (call);                                                \
        RBM_CHECK(rbm_nccl_rc_ == ncclSuccess,                                             \
                  "NCCL: " #call " failed: " << ncclGetErrorString(rbm_nccl_rc_) << " ("  \
                                             << ncclGetLastError(nullptr) << ")");        \
    } while (0)

namespace rbm::cuda {
namespace {

// Seconds an allreduce may stay unfinished before the job is ended (RBM_NCCL_TIMEOUT_S).
double timeout_seconds() {
    const char* text = std::getenv("RBM_NCCL_TIMEOUT_S");
    const double t = text ? std::atof(text) : 0.0;
    return t > 0 ? t : 300.0;
}

// Ends the process `seconds` from now unless the returned flag is set by then: what
// follows (an ncclCommAbort) may hang, and a rank that hangs holds the whole job until
// its limit. The caller sets the flag once that has returned.
std::shared_ptr<std::atomic<bool>> exit_unless_done_within(int seconds, const char* what) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread([seconds, what, done] {
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        if (*done) return;
        std::fprintf(stderr, "rbm: error: %s did not return within %d s; ending the process\n", what, seconds);
        Communicator::end_job_from_thread(1);
    }).detach();
    return done;
}

class NcclReducer final : public GradientReducer {
public:
    explicit NcclReducer(const Communicator& comm) : rank_(comm.rank()), timeout_(timeout_seconds()) {
        ncclUniqueId id{};
        if (comm.is_root()) RBM_NCCL(ncclGetUniqueId(&id));
        comm.broadcast(&id, sizeof id);
        RBM_NCCL(ncclCommInitRank(&nccl_, comm.size(), id, comm.rank()));
        try {
            RBM_CUDA(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
            RBM_CUDA(cudaGetDevice(&device_));  // the rank's bound GPU, for the watchdog's thread
            watchdog_ = std::thread([this] { watch(); });
        } catch (...) {  // a constructor that throws gets no destructor
            if (done_) cudaEventDestroy(done_);
            ncclCommDestroy(nccl_);
            throw;
        }
    }

    ~NcclReducer() override {
        stop_ = true;
        if (watchdog_.joinable()) watchdog_.join();
        // ncclCommDestroy waits for the communicator's work: where an allreduce is unfinished
        // (an error unwinding through a step) that may never come, so the communicator is
        // aborted instead, under the timer. A run that ends or stops (a signal's exit 75
        // unwinds too) has synchronised its last allreduce: destroyed as usual.
        const bool unfinished = in_call_ || (pending_ && cudaEventQuery(done_) == cudaErrorNotReady);
        if (unfinished) {
            const auto returned = exit_unless_done_within(30, "ncclCommAbort");
            ncclCommAbort(nccl_);
            *returned = true;
        } else {
            ncclCommDestroy(nccl_);
        }
        cudaEventDestroy(done_);
    }

    void sum_in_place(const GradientView& g) override {
        RBM_CHECK(g.on_device, "the NCCL reducer needs a device gradient buffer");
        auto stream = static_cast<cudaStream_t>(g.stream);
        // The deadline runs from before the call: the enqueue itself may block (NCCL sets
        // up connections at the first collective), and a peer that never comes would hold
        // it there with nothing pending for the watchdog to see.
        {
            std::lock_guard<std::mutex> lock(mutex_);
            pending_since_ = Clock::now();
            in_call_ = true;
        }
        try {
            RBM_NCCL(ncclAllReduce(g.data, g.data, g.count, ncclFloat, ncclSum, nccl_, stream));
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            in_call_ = false;
            throw;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        in_call_ = false;
        RBM_CUDA(cudaEventRecord(done_, stream));
        pending_ = true;
    }

    // The library loaded at run time, which may not be the headers' version.
    std::string describe() const override {
        int code = 0;
        RBM_NCCL(ncclGetVersion(&code));  // 2.9 and later: major * 10000 + minor * 100 + patch
        return "NCCL " + std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
               std::to_string(code % 100) + " ncclAllReduce (device buffers)";
    }

private:
    void watch() {
        // A new thread starts on device 0: without this its event queries would make a
        // context there for every rank (memory on GPU 0; an error in exclusive mode).
        if (cudaSetDevice(device_) != cudaSuccess) abort_job("the NCCL watchdog cannot select its GPU");
        while (!stop_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            ncclResult_t async = ncclSuccess;
            if (ncclCommGetAsyncError(nccl_, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
                abort_job(std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(async));
            std::lock_guard<std::mutex> lock(mutex_);
            if (!pending_ && !in_call_) continue;
            if (!in_call_ && cudaEventQuery(done_) == cudaSuccess) pending_ = false;
            else if (seconds_since(pending_since_) > timeout_)
                abort_job("an NCCL allreduce did not finish within " + std::to_string(int(timeout_)) +
                          " s (a rank died or hangs; RBM_NCCL_TIMEOUT_S sets the limit)");
        }
    }

    [[noreturn]] void abort_job(const std::string& why) {
        std::fprintf(stderr, "rbm (rank %d): error: %s; aborting the communicator and the job\n", rank_, why.c_str());
        std::fflush(stderr);
        exit_unless_done_within(10, "ncclCommAbort");  // never set: the process ends below
        ncclCommAbort(nccl_);
        Communicator::end_job_from_thread(1);
    }

    int rank_;
    double timeout_;
    ncclComm_t nccl_ = nullptr;
    cudaEvent_t done_ = nullptr;
    std::thread watchdog_;
    int device_ = 0;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    bool pending_ = false;  // an allreduce queued, its event not yet seen complete
    bool in_call_ = false;  // inside ncclAllReduce itself
    Clock::time_point pending_since_;
};

// Device gradient -> pinned host -> MPI_Allreduce -> device: for ranks sharing a GPU.
class StagedMpiReducer final : public GradientReducer {
public:
    explicit StagedMpiReducer(const Communicator& comm) : comm_(comm) {}
    ~StagedMpiReducer() override {
        if (host_) cudaFreeHost(host_);
    }

    void sum_in_place(const GradientView& g) override {
        RBM_CHECK(g.on_device, "the staged reducer needs a device gradient buffer");
        if (count_ != g.count) {
            if (host_) cudaFreeHost(std::exchange(host_, nullptr));  // not freed again if the allocation fails
            count_ = 0;
            RBM_CUDA(cudaMallocHost(reinterpret_cast<void**>(&host_), g.count * sizeof(float)));
            count_ = g.count;
        }
        auto stream = static_cast<cudaStream_t>(g.stream);
        RBM_CUDA(cudaMemcpyAsync(host_, g.data, g.count * sizeof(float), cudaMemcpyDeviceToHost, stream));
        RBM_CUDA(cudaStreamSynchronize(stream));
        comm_.allreduce_sum(host_, g.count);
        RBM_CUDA(cudaMemcpyAsync(g.data, host_, g.count * sizeof(float), cudaMemcpyHostToDevice, stream));
    }

    std::string describe() const override { return "MPI_Allreduce staged through host memory (--comm mpi)"; }

private:
    const Communicator& comm_;
    float* host_ = nullptr;
    std::size_t count_ = 0;
};

}  // namespace

std::unique_ptr<GradientReducer> make_nccl_reducer(const Communicator& comm) {
    return std::make_unique<NcclReducer>(comm);
}

std::unique_ptr<GradientReducer> make_staged_mpi_reducer(const Communicator& comm) {
    return std::make_unique<StagedMpiReducer>(comm);
}

}  // namespace rbm::cuda
