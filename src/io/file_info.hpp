// `rbm info FILE`: says what a checkpoint, metrics or samples file holds, for people.
#pragma once

#include <ostream>
#include <string>

namespace rbm {

// Prints a description of an rbm HDF5 file; rbm::Error if it is not one.
void describe_file(const std::string& path, std::ostream& out);

}  // namespace rbm
