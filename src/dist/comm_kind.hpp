// How gradients are summed (--comm auto|nccl|mpi), as a name: kept apart from the
// reducer factory so that configuration code (and its fuzz target) needs no MPI.
#pragma once

#include <string>

namespace rbm {

enum class CommKind { auto_select, nccl, mpi };

CommKind parse_comm(const std::string& text, const std::string& origin);
std::string comm_name(CommKind kind);

}  // namespace rbm
