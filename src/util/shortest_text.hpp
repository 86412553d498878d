// Numbers written for people and read back by programs (INI configurations, file
// attributes): the shortest decimal text that reads back as the same value, so a float
// option given as 0.3 is stored as 0.3, not 0.30000001192092896.
#pragma once

#include <charconv>
#include <string>

namespace rbm {

template <typename Real>
std::string shortest_text(Real x) {
    char buf[64];
    auto result = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, result.ptr);
}

}  // namespace rbm
