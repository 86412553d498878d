// Engine selection (see engine_factory.hpp).
#include "engine/engine_factory.hpp"

#include <cstdlib>

#include "util/check.hpp"

#ifdef RBM_HAVE_CUDA
#include "engine/cuda/cuda_engine.hpp"
#endif

namespace rbm {

bool cuda_built() {
#ifdef RBM_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

int cuda_device_count() {
#ifdef RBM_HAVE_CUDA
    return cuda::visible_device_count();
#else
    return 0;
#endif
}

std::string why_no_cuda_device() {
#ifdef RBM_HAVE_CUDA
    return cuda::device_count_problem();
#else
    return "this rbm was built without CUDA";
#endif
}

DeviceKind resolve_device(DeviceKind requested) {
    if (requested != DeviceKind::auto_select) return requested;
    return cuda_device_count() > 0 ? DeviceKind::cuda : DeviceKind::cpu;
}

void require_cuda_device() {
    if (!cuda_built())
        fail("--device cuda: this rbm was built without CUDA (nvcc was not found when it was configured)");
    if (cuda_device_count() == 0)
        fail("--device cuda: no CUDA GPU is visible to this process (CUDA: ", why_no_cuda_device(),
             "; check the driver and CUDA_VISIBLE_DEVICES)");
}

ChainKernel chain_kernel_requested() {
    const char* value = std::getenv("RBM_CUDA_CHAIN_KERNEL");
    const std::string mode = value ? value : "";
    if (mode == "1") return ChainKernel::sweeps;
    if (mode == "2") return ChainKernel::step;
    RBM_CHECK(mode.empty() || mode == "0", "RBM_CUDA_CHAIN_KERNEL=" << mode
                                               << ": expected 0 (off), 1 (the sweeps) or 2 (the whole step)");
    return ChainKernel::off;
}

std::unique_ptr<Engine> make_engine(RbmShape shape, const EngineOptions& options) {
    const DeviceKind kind = resolve_device(options.device);
    if (kind == DeviceKind::cpu) return make_cpu_engine(shape);
    require_cuda_device();
#ifdef RBM_HAVE_CUDA
    return cuda::make_cuda_engine(shape, options.cuda_device, options.tf32, options.chain_kernel);
#else
    return nullptr;  // not reached: require_cuda_device() failed
#endif
}

}  // namespace rbm
