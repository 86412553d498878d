// Paths recorded in output files and reports are absolute, so a file read from another
// directory (or another machine's copy of the same tree) still says where its inputs were.
#pragma once

#include <filesystem>
#include <string>

namespace rbm {

// `path` made absolute against the working directory, without resolving links; a
// FILE.h5:/dataset spec keeps its dataset part.
inline std::string absolute_path(const std::string& path) {
    return path.empty() ? path : std::filesystem::absolute(path).string();
}

}  // namespace rbm
