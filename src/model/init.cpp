// Tutorial initialisation of an RBM (see init.hpp).
#include "model/init.hpp"

#include <cmath>

#include "random/streams.hpp"

namespace rbm {

ParamBuffer initial_params(RbmShape shape, uint32_t seed) {
    ParamBuffer p(shape);
    const float bound = 4.0f * std::sqrt(6.0f / float(shape.n_visible + shape.n_hidden));
    const Stream stream = Stream::make(seed, 0, Purpose::init_weights);
    for (std::size_t e = 0; e < shape.weight_count(); ++e)
        p.W()[e] = (2.0f * uniform_at(stream, 0, 0, e) - 1.0f) * bound;
    return p;
}

}  // namespace rbm
