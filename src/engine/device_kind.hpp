// Where a run computes (--device auto|cpu|cuda), as a name: kept apart from the engine
// factory so that configuration code (and its fuzz target) needs no engine.
#pragma once

#include <string>

namespace rbm {

enum class DeviceKind { auto_select, cpu, cuda };

DeviceKind parse_device(const std::string& text, const std::string& origin);
std::string device_name(DeviceKind kind);

}  // namespace rbm
