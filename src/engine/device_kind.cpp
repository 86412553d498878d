// --device names (see device_kind.hpp).
#include "engine/device_kind.hpp"

#include "util/choices.hpp"

namespace rbm {
namespace {
constexpr Choice<DeviceKind> kDevices[] = {
    {"auto", DeviceKind::auto_select}, {"cpu", DeviceKind::cpu}, {"cuda", DeviceKind::cuda}};
}

DeviceKind parse_device(const std::string& text, const std::string& origin) {
    return parse_choice(text, origin, kDevices);
}
std::string device_name(DeviceKind kind) { return choice_name(kind, kDevices); }

}  // namespace rbm
