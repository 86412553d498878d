// The HDF5 half of the data readers: training data as a 2-D (or 3-D image) dataset in
// someone else's HDF5 file, named "file.h5:/group/dataset". Used only by dataset.cpp.
#pragma once

#include <optional>
#include <string>

#include "io/dataset.hpp"

namespace rbm::h5in {

struct Spec {
    std::string file;     // path of the HDF5 file
    std::string dataset;  // absolute path inside it, starting with '/'
};

// Splits at the last ':' that is followed by '/'; nullopt when there is none (a plain path).
std::optional<Spec> split_spec(const std::string& spec);

// Shape and type from metadata only.
SourceInfo probe(const std::string& spec);

// Only `rows` are read (a hyperslab), checked for NaN/Inf and for values outside [0, 1].
Dataset read(const std::string& spec, RowRange rows);

}  // namespace rbm::h5in
