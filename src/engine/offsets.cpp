// Why a file: both engines accept centering offsets and chain states, and both must refuse
// the same bad ones; and an engine without parallel tempering refuses tempered chains here.
#include <cmath>

#include "engine/engine.hpp"
#include "util/check.hpp"

namespace rbm {

void check_offsets(const Offsets& offsets, RbmShape shape) {
    if (offsets.empty() && offsets.hidden.empty()) return;
    RBM_CHECK(offsets.visible.size() == shape.n_visible && offsets.hidden.size() == shape.n_hidden,
              "centering offsets hold " << offsets.visible.size() << " visible and " << offsets.hidden.size()
                                        << " hidden values, the model has " << shape.n_visible << " and "
                                        << shape.n_hidden);
    for (const auto* part : {&offsets.visible, &offsets.hidden})
        for (float x : *part) RBM_CHECK(std::isfinite(x) && x >= 0.0f && x <= 1.0f, "centering offset " << x << " is outside [0, 1]");
}

void check_chain_state(const std::vector<uint8_t>& hidden, RbmShape shape) {
    RBM_CHECK(shape.n_hidden > 0 && hidden.size() % shape.n_hidden == 0,
              "chain state of " << hidden.size() << " values is not a whole number of rows of " << shape.n_hidden);
    for (std::size_t e = 0; e < hidden.size(); ++e)
        RBM_CHECK(hidden[e] <= 1, "chain state value " << int(hidden[e]) << " (chain " << e / shape.n_hidden
                                                       << ", hidden unit " << e % shape.n_hidden
                                                       << ") is not 0 or 1");
}

void Engine::set_tempered_chains(const std::vector<uint8_t>& hidden) {
    RBM_CHECK(hidden.empty(), "the " << describe() << " engine has no parallel tempering (--method pt)");
}

}  // namespace rbm
