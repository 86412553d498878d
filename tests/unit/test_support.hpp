// Assertions shared by the unit tests: that a call fails with rbm::Error, and with a
// message that says what it should.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "util/check.hpp"

namespace rbm::test {

// The message of the rbm::Error that f() throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace rbm::test

#define EXPECT_ERROR_HAS(stmt, text) EXPECT_THAT_STR(::rbm::test::error_of([&] { stmt; }), text)
#define EXPECT_THAT_STR(msg, text) \
    EXPECT_NE((msg).find(text), std::string::npos) << "message: " << (msg) << "\nexpected to contain: " << (text)
