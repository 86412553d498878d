// --comm names (see comm_kind.hpp).
#include "dist/comm_kind.hpp"

#include "util/choices.hpp"

namespace rbm {
namespace {
constexpr Choice<CommKind> kComms[] = {{"auto", CommKind::auto_select}, {"nccl", CommKind::nccl}, {"mpi", CommKind::mpi}};
}

CommKind parse_comm(const std::string& text, const std::string& origin) { return parse_choice(text, origin, kComms); }
std::string comm_name(CommKind kind) { return choice_name(kind, kComms); }

}  // namespace rbm
