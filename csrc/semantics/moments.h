// Weighted streaming moments, shared by the host summaries and the CUDA summary
// kernel. State: total weight W, mean, and M2 = sum of w * (x - mean)^2, all float64.
//
// Update: West (1979), the weighted form of Welford's rule. Merge: Chan, Golub and
// LeVeque. Both keep a constant series at M2 == 0 exactly, and neither subtracts
// two large sums, so the variance never comes out negative from cancellation.
//
// Across dynamic range (one weight swamping the other, so that W_a + W_b rounds to
// the larger): each share W_a / W and W_b / W is its own correctly rounded division
// (never 1 - the other share), the mean moves from the heavier side by the lighter
// side's share, and M2 grows by delta^2 * W_a * W_b / W built from non-negative
// factors that neither underflow nor overflow unless the result does. An M2 beyond
// float64 (finite mean) is +inf, so std is inf; a NaN or infinite mean carries a NaN
// M2. The callers reject a total weight that overflows (host) or cannot
// reach one (device weights are per-batch finite values).
#pragma once
#include "hd.h"

namespace fm {

struct Moments {
  double weight;
  double mean;
  double m2;
};

// Finite (not inf, not NaN) by plain comparisons: host and device code both have them.
FM_HD bool moments_finite(double x) { return x <= 1.7976931348623157e308 && x >= -1.7976931348623157e308; }

// A series holding a NaN or an infinity has no finite spread: like numpy's var, its M2
// is NaN whenever its mean is not finite (mean - mean is NaN for +-inf and NaN, and
// needs no NaN constant, which host and device spell differently). So a state is
// either finite or carries a NaN M2, and snapshots can say which states are possible.
FM_HD Moments spread_of_nonfinite(Moments s) {
  if (!moments_finite(s.mean)) s.m2 = s.mean - s.mean;
  return s;
}

// Combines (wa, ma, m2a) with (wb, mb, m2b), both weights > 0.
FM_HD Moments moments_combine(double wa, double ma, double m2a, double wb, double mb, double m2b) {
  const double total = wa + wb;
  const double share_a = wa / total;
  const double share_b = wb / total;
  const double delta = mb - ma;
  Moments out;
  out.weight = total;
  if (!moments_finite(delta)) {
    // Opposite huge means (delta overflowed), or an infinite/NaN mean on either side:
    // the weighted average gives what numpy's mean does (-inf and 1 -> -inf).
    out.mean = ma * share_a + mb * share_b;
  } else if (share_b <= share_a) {
    out.mean = ma + delta * share_b;  // delta == 0 keeps a constant series exact
  } else {
    out.mean = mb - delta * share_a;
  }
  // M2 grows by delta^2 * wa * wb / total = (delta * w_light) * (delta * share_heavy):
  // share_heavy >= 1/2, so no factor underflows unless the result does. (Forming
  // wb * share_a first rounded it to 0 for subnormal weights: M2 0 for a spread series,
  // and inf * 0 = NaN when delta overflowed.)
  const bool a_light = wa <= wb;
  const double w_light = a_light ? wa : wb;
  const double share_heavy = a_light ? share_b : share_a;
  double grow;
  if (moments_finite(delta)) {
    grow = (delta * w_light) * (delta * share_heavy);
  } else {
    // delta beyond float64 (opposite huge means): its half is exact and finite; the
    // product is +inf only when the true M2 is beyond float64 too.
    const double half = mb * 0.5 - ma * 0.5;
    grow = (half * w_light) * (half * share_heavy) * 4.0;
  }
  out.m2 = m2a + m2b + grow;
  return spread_of_nonfinite(out);
}

// Adds x with weight w > 0 (callers skip w == 0 and reject w < 0).
FM_HD void moments_add(Moments& s, double x, double w) {
  if (s.weight == 0) {
    s = spread_of_nonfinite(Moments{w, x, 0.0});  // the first value: mean = x exactly
    return;
  }
  s = moments_combine(s.weight, s.mean, s.m2, w, x, 0.0);
}

FM_HD Moments moments_merge(const Moments& a, const Moments& b) {
  if (b.weight == 0) return a;
  if (a.weight == 0) return b;
  return moments_combine(a.weight, a.mean, a.m2, b.weight, b.mean, b.m2);
}

// Population variance, clamped at 0 (NaN stays NaN).
FM_HD double moments_variance(const Moments& s) {
  const double v = s.m2 / s.weight;
  return v < 0 ? 0.0 : v;
}

}  // namespace fm
