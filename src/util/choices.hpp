// Options that take one of a few names (--method cd|pcd, --device auto|cpu|cuda, ...):
// one table per option gives both directions, name -> value for parsing and value ->
// name for the stored configuration, and the same error for every option.
#pragma once

#include <cstddef>
#include <string>

#include "util/check.hpp"

namespace rbm {

template <typename Value>
struct Choice {
    const char* name;
    Value value;
};

// The value named `text`; else "ORIGIN must be a, b or c, got 'text'".
template <typename Value, std::size_t N>
Value parse_choice(const std::string& text, const std::string& origin, const Choice<Value> (&choices)[N]) {
    for (const auto& c : choices)
        if (text == c.name) return c.value;
    std::string names;
    for (std::size_t i = 0; i < N; ++i) names += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(choices[i].name);
    fail(origin, " must be ", names, ", got '", text, "'");
}

// The name of `value` (the first entry with it).
template <typename Value, std::size_t N>
std::string choice_name(Value value, const Choice<Value> (&choices)[N]) {
    for (const auto& c : choices)
        if (c.value == value) return c.name;
    return choices[0].name;
}

}  // namespace rbm
