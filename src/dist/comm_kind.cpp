// --comm names (see comm_kind.hpp).
#include "dist/comm_kind.hpp"

#include "util/check.hpp"

namespace rbm {

CommKind parse_comm(const std::string& text, const std::string& origin) {
    if (text == "auto") return CommKind::auto_select;
    if (text == "nccl") return CommKind::nccl;
    if (text == "mpi") return CommKind::mpi;
    fail(origin, " must be auto, nccl or mpi, got '", text, "'");
}

std::string comm_name(CommKind kind) {
    switch (kind) {
        case CommKind::nccl: return "nccl";
        case CommKind::mpi: return "mpi";
        default: return "auto";
    }
}

}  // namespace rbm
