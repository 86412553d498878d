// The NCCL reducer's watchdog (dist/cuda/device_reducers.cpp) ending a job whose
// allreduce cannot finish: the stream is held by a host function that never returns
// in time, so the allreduce queued behind it stays pending past RBM_NCCL_TIMEOUT_S. The
// watchdog must say so, abort the communicator (or give up on that after its timer) and
// end the process with exit 1, while the main thread waits as a rank waiting for its
// step would. Run under `mpirun -np 1` by run_gpu_checks.sh (GPU machines) and
// nccl_watchdog.sh (ctest: skips without a GPU). Exit 0 would mean the watchdog failed.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "dist/communicator.hpp"
#include "dist/reducer_factory.hpp"
#include "dist/gradient_view.hpp"
#include "engine/gpu_devices.hpp"

namespace {
void CUDART_CB hold_the_stream(void*) { std::this_thread::sleep_for(std::chrono::seconds(60)); }
}  // namespace

int main(int argc, char** argv) {
    if (rbm::cuda_device_count() == 0) {
        std::printf("SKIP: no GPU (CUDA: %s)\n", rbm::why_no_cuda_device().c_str());
        return 77;
    }
    if (argc > 1 && std::string(argv[1]) == "--gpu-check") return 0;  // nccl_watchdog.sh asks first
    rbm::MpiSession mpi(&argc, &argv);
    rbm::Communicator comm;
    std::unique_ptr<rbm::GradientReducer> reducer = rbm::make_reducer(comm, rbm::CommKind::nccl, true, false);
    std::printf("reducer: %s\n", reducer->describe().c_str());
    std::fflush(stdout);
    float* data = nullptr;
    cudaStream_t stream = nullptr;
    if (cudaMalloc(&data, 1024 * sizeof(float)) != cudaSuccess || cudaStreamCreate(&stream) != cudaSuccess ||
        cudaLaunchHostFunc(stream, hold_the_stream, nullptr) != cudaSuccess) {
        std::printf("CUDA setup failed\n");
        return 2;
    }
    rbm::GradientView view;
    view.data = data;
    view.count = 1024;
    view.on_device = true;
    view.stream = stream;
    reducer->sum_in_place(view);  // queued behind the held stream: pending from here on
    std::printf("allreduce queued; waiting for the watchdog\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds(45));
    std::printf("the watchdog did not end the process\n");
    return 0;
}
