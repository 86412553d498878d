// Where `rbm eval` anneals (--device): AIS and RAISE chains on the CPU, or on the GPU
// that the rank's node-local rank picks (the same binding as training's). The loops,
// schedule and statistics are the same either way (src/eval/ais.hpp).
#pragma once

#include <string>

#include "dist/communicator.hpp"
#include "engine/device_kind.hpp"
#include "eval/ais.hpp"

namespace rbm::cli {

struct AnnealingDevice {
    eval::ChainsFactory make;  // empty: the CPU's chains
    std::string description;   // "cpu" or "cuda <GPU name (UUID)>", for the log and --json
};

// Collective when the GPU is used (the binding gathers every rank's GPU). Fails by name
// when --device cuda cannot be had.
AnnealingDevice annealing_device(DeviceKind requested, const ParamBuffer& params, const eval::BaseModel& base,
                                 const Communicator& comm);

}  // namespace rbm::cli
