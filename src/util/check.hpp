// Errors that name where they happened. Every failure rbm reports to a user goes
// through rbm::Error, so the CLI can print one clean line and exit non-zero, and
// every library call (HDF5, MPI, CUDA, ...) is checked with a macro that adds file:line.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace rbm {

// A user-facing failure: bad input, bad option, a library call that failed.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Builds a message from stream-able parts: fail("file ", path, ": truncated").
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    throw Error(out.str());
}

namespace detail {
[[noreturn]] inline void fail_at(const char* file, int line, const std::string& what) {
    std::ostringstream out;
    out << what << " (" << file << ":" << line << ")";
    throw Error(out.str());
}
}  // namespace detail

}  // namespace rbm

// A file or option a user gave that is not what rbm needs: the message names it and what
// is wrong; no source location, since the input, not rbm, is at fault.
#define RBM_REQUIRE(cond, msg)                                                    \
    do {                                                                          \
        if (!(cond)) {                                                            \
            std::ostringstream rbm_require_msg_;                                  \
            rbm_require_msg_ << msg;                                              \
            throw ::rbm::Error(rbm_require_msg_.str());                           \
        }                                                                         \
    } while (0)

// Internal invariant or checked library result; the message says what failed and where.
#define RBM_CHECK(cond, msg)                                                      \
    do {                                                                          \
        if (!(cond)) {                                                            \
            std::ostringstream rbm_check_msg_;                                    \
            rbm_check_msg_ << msg;                                                \
            ::rbm::detail::fail_at(__FILE__, __LINE__, rbm_check_msg_.str());     \
        }                                                                         \
    } while (0)
