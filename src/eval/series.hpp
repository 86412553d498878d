// log1p and expm1 for the small arguments that dominate AIS's log-weight increments and
// the pseudo-likelihood's flip differences: short series, accurate to about 1e-16
// relative, several times cheaper than the libm calls they fall back to elsewhere.
#pragma once

#include <cmath>

namespace rbm::eval {

// log1p(y) = 2 atanh(t), t = y / (2 + y) = 2 (t + t^3/3 + t^5/5 + ...); for |y| < 1/16,
// |t| < 0.033 and the first omitted term (t^11 / 11) is below 1e-17 relative.
inline double log1p_series(double y) {
    if (std::abs(y) >= 0.0625) return std::log1p(y);
    const double t = y / (2.0 + y), t2 = t * t;
    return 2.0 * t *
           (1.0 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9)))));
}

// expm1(d) = d + d^2/2! + ... + d^9/9!; for |d| < 1/16 the omitted d^10/10! is below
// 1e-17 relative.
inline double expm1_series(double d) {
    if (std::abs(d) >= 0.0625) return std::expm1(d);
    return d * (1.0 + d * (1.0 / 2 + d * (1.0 / 6 + d * (1.0 / 24 + d * (1.0 / 120 + d * (1.0 / 720 +
           d * (1.0 / 5040 + d * (1.0 / 40320 + d * (1.0 / 362880)))))))));
}

// softplus(x0 + δ) - softplus(x0) = log1p(y), y = σ(x0) expm1(δ), is exact for small steps
// unless 1 + y cancels (y <= -1/2) or expm1(δ) overflowed (δ > 709: weights of 10^3 and
// more); callers then take the plain difference of the two softplus values.
inline bool log1p_of_step_is_exact(double y) { return std::isfinite(y) && y > -0.5; }

}  // namespace rbm::eval
