// `rbm eval --device` (see eval_device.hpp).
#include "cli/eval_device.hpp"

#include <iostream>

#include "dist/device_binding.hpp"
#include "engine/engine_factory.hpp"
#include "util/check.hpp"

#ifdef RBM_HAVE_CUDA
#include "eval/cuda/cuda_annealing_chains.hpp"
#endif

namespace rbm::cli {

AnnealingDevice annealing_device(DeviceKind requested, const ParamBuffer& params, const eval::BaseModel& base,
                                 const Communicator& comm) {
    if (resolve_device_everywhere(comm, requested) == DeviceKind::cpu) return {{}, "cpu"};
    require_cuda_device();
#ifdef RBM_HAVE_CUDA
    const DeviceBinding binding = bind_device(comm, std::cerr);
    return {eval::cuda_chains_factory(params, base, binding.device), "cuda " + binding.description};
#else
    (void)params, (void)base, (void)comm;
    return {};  // not reached: require_cuda_device() failed
#endif
}

}  // namespace rbm::cli
