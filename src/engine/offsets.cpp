// Why a file: both engines accept centering offsets, and both must refuse the same bad ones.
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

}  // namespace rbm
