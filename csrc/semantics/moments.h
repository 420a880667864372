// Weighted streaming moments, shared by the host summaries and the CUDA summary
// kernel. State: total weight W, mean, and M2 = sum of w * (x - mean)^2, all float64.
//
// Update: West (1979), the weighted form of Welford's rule. Merge: Chan, Golub and
// LeVeque. Both keep a constant series at M2 == 0 exactly, and neither subtracts
// two large sums, so the variance never comes out negative from cancellation.
#pragma once
#include "hd.h"

namespace fm {

struct Moments {
  double weight;
  double mean;
  double m2;
};

// Adds x with weight w > 0 (callers skip w == 0 and reject w < 0).
FM_HD void moments_add(Moments& s, double x, double w) {
  const double total = s.weight + w;
  const double delta = x - s.mean;
  s.mean += delta * (w / total);  // w / total == 1 on the first value: mean = x exactly
  s.m2 += w * delta * (x - s.mean);
  s.weight = total;
}

FM_HD Moments moments_merge(const Moments& a, const Moments& b) {
  if (b.weight == 0) return a;
  if (a.weight == 0) return b;
  const double total = a.weight + b.weight;
  const double delta = b.mean - a.mean;
  const double share_b = b.weight / total;
  Moments out;
  out.weight = total;
  out.mean = a.mean + delta * share_b;
  out.m2 = a.m2 + b.m2 + delta * delta * a.weight * share_b;
  return out;
}

// Population variance, clamped at 0 (NaN stays NaN).
FM_HD double moments_variance(const Moments& s) {
  const double v = s.m2 / s.weight;
  return v < 0 ? 0.0 : v;
}

}  // namespace fm
