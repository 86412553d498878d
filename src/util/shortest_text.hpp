// Numbers written for people and read back by programs (INI configurations, file
// attributes): the shortest decimal text that reads back as the same value, so a float
// option given as 0.3 is stored as 0.3, not 0.30000001192092896. And numbers written for
// people only (reports, progress lines): a fixed number of decimals.
#pragma once

#include <charconv>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <string>

namespace rbm {

template <typename Real>
std::string shortest_text(Real x) {
    char buf[64];
    auto result = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, result.ptr);
}

// "nan", "+inf", "-inf" or x with `digits` decimals.
inline std::string fixed(double x, int digits = 3) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "+inf" : "-inf";
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << x;
    return o.str();
}

}  // namespace rbm
