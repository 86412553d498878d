// --device names (see device_kind.hpp).
#include "engine/device_kind.hpp"

#include "util/check.hpp"

namespace rbm {

DeviceKind parse_device(const std::string& text, const std::string& origin) {
    if (text == "auto") return DeviceKind::auto_select;
    if (text == "cpu") return DeviceKind::cpu;
    if (text == "cuda") return DeviceKind::cuda;
    fail(origin, " must be auto, cpu or cuda, got '", text, "'");
}

std::string device_name(DeviceKind kind) {
    switch (kind) {
        case DeviceKind::cpu: return "cpu";
        case DeviceKind::cuda: return "cuda";
        default: return "auto";
    }
}

}  // namespace rbm
