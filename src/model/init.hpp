// The tutorial's initial parameters: W uniform in +-4 sqrt(6 / (n_visible + n_hidden)),
// zero biases. Drawn from a rank-independent Philox stream, so every rank starts equal.
#pragma once

#include <cstdint>

#include "model/params.hpp"

namespace rbm {

ParamBuffer initial_params(RbmShape shape, uint32_t seed);

}  // namespace rbm
