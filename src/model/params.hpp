// The RBM's parameters as one contiguous buffer [W | vbias | hbias]. Gradients and the
// optimizer's velocity share this layout, so one allreduce and one fused update loop
// cover every parameter, on the CPU and on the GPU alike.
#pragma once

#include <cstddef>
#include <vector>

namespace rbm {

struct RbmShape {
    std::size_t n_visible = 0;
    std::size_t n_hidden = 0;

    std::size_t weight_count() const { return n_visible * n_hidden; }
    // Offsets of the three blocks inside a parameter-shaped buffer.
    std::size_t vbias_offset() const { return weight_count(); }
    std::size_t hbias_offset() const { return weight_count() + n_visible; }
    std::size_t total() const { return weight_count() + n_visible + n_hidden; }
    bool operator==(const RbmShape& o) const {
        return n_visible == o.n_visible && n_hidden == o.n_hidden;
    }
};

// Host copy of a parameter-shaped buffer. W is row-major [n_visible, n_hidden]
// (the tutorial's orientation): W[i * n_hidden + j] couples visible i and hidden j.
struct ParamBuffer {
    RbmShape shape;
    std::vector<float> values;

    ParamBuffer() = default;
    explicit ParamBuffer(RbmShape s) : shape(s), values(s.total(), 0.0f) {}

    float* W() { return values.data(); }
    float* vbias() { return values.data() + shape.vbias_offset(); }
    float* hbias() { return values.data() + shape.hbias_offset(); }
    const float* W() const { return values.data(); }
    const float* vbias() const { return values.data() + shape.vbias_offset(); }
    const float* hbias() const { return values.data() + shape.hbias_offset(); }
};

}  // namespace rbm
