// fusedmetrics._core.RankHistogramPlan: top-k accuracy for several k in one pass (the
// class; accuracy_multi_k_bindings.cpp binds it). Same arguments and checks as
// AccuracyPlan, with k = the largest k; count() returns the rank histogram (k + 1 bins)
// and the total, from which Python reads the correct count of every k.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <stdexcept>

#include "bindings/accuracy_call_checks.h"
#include "bindings/buffer_checks.h"
#include "cpu/accuracy_multi_k.h"
#include "cpu/cpu_features.h"
#include "semantics/dtypes.h"

namespace fm::bindings {

namespace py = pybind11;

class RankHistogramPlan {
 public:
  RankHistogramPlan(int y_code, int64_t N, int64_t C, int64_t M, std::array<int64_t, 3> ys, int t_code,
                    std::array<int64_t, 2> ts, bool has_ignore, int64_t ignore, int64_t kmax)
      : call_(fm::bindings::make_accuracy_call(y_code, N, C, M, ys, t_code, ts, has_ignore, ignore, kmax, 63)) {
    if (kmax > (int64_t(1) << 24)) fm::bindings::invalid("kmax must be <= 2^24 (cap it at C)");
    select();
  }

  // int64 [hist[0], ..., hist[kmax], total].
  py::array_t<int64_t> count(const py::array& y, const py::array& t) {
    if (y.itemsize() != fm::logit_itemsize(call_.y_code) || t.itemsize() != fm::label_itemsize(call_.t_code))
      throw std::invalid_argument("the arrays' item sizes do not match the plan");
    const auto& p = call_;
    const int64_t yi = y.itemsize(), ti = t.itemsize();
    const int64_t y_shape[] = {p.N, p.C, p.M}, y_strides[] = {p.ys_n, p.ys_c, p.ys_m};
    const int64_t t_shape[] = {p.N, p.M}, t_strides[] = {p.ts_n, p.ts_m};
    require_inside(extent_of(3, y_shape, y_strides, yi, yi), y, "y");
    require_inside(extent_of(2, t_shape, t_strides, ti, ti), t, "t");
    if (generation_ != fm::cpu::isa_generation()) select();
    py::array_t<int64_t> result(p.k + 2);
    int64_t* out = result.mutable_data();
    for (int64_t i = 0; i < p.k + 2; ++i) out[i] = 0;
    fm::AccuracyCall call = call_;
    call.y = y.data();
    call.t = t.data();
    {
      py::gil_scoped_release release;
      if (call.N * call.M > 0) fm::cpu::rank_histogram(call, kernel_, out, out + p.k + 1);
    }
    return result;
  }

  // Whether histogram_at may read memory at (y_ptr, t_ptr): the conditions of
  // AccuracyPlan::fits_in_place (non-empty, aligned, at most 4 MiB: the GIL stays held).
  bool fits_in_place(uintptr_t y_ptr, uintptr_t t_ptr) const {
    const auto& p = call_;
    const int64_t yi = fm::logit_itemsize(p.y_code), ti = fm::label_itemsize(p.t_code);
    const int64_t y_shape[] = {p.N, p.C, p.M}, y_strides[] = {p.ys_n, p.ys_c, p.ys_m};
    const int64_t t_shape[] = {p.N, p.M}, t_strides[] = {p.ts_n, p.ts_m};
    const Extent ye = extent_of(3, y_shape, y_strides, yi, yi), te = extent_of(2, t_shape, t_strides, ti, ti);
    if (ye.empty || te.empty || y_ptr % uintptr_t(yi) != 0 || t_ptr % uintptr_t(ti) != 0) return false;
    constexpr int64_t kMaxBytesUnderGil = int64_t(1) << 22;
    return (ye.high - ye.low) + (te.high - te.low) <= kMaxBytesUnderGil;
  }

  // The rank histogram of the plan's view at these addresses into hist[0 .. kmax()] and
  // the total into hist[kmax() + 1] (added), with the GIL held. The caller checked
  // fits_in_place and that every byte the view reads is the tensors' memory.
  void histogram_at(uintptr_t y_ptr, uintptr_t t_ptr, int64_t* hist) {
    if (generation_ != fm::cpu::isa_generation()) select();
    fm::AccuracyCall call = call_;
    call.y = reinterpret_cast<const void*>(y_ptr);
    call.t = reinterpret_cast<const void*>(t_ptr);
    fm::cpu::rank_histogram(call, kernel_, hist, hist + call_.k + 1);
  }

  // The number of rank bins less one: the largest k asked, capped at C.
  int64_t kmax() const { return call_.k; }

 private:
  void select() {
    generation_ = fm::cpu::isa_generation();
    kernel_ = fm::cpu::select_rank_histogram(call_);
  }

  fm::AccuracyCall call_;
  fm::cpu::RankHistogramFn kernel_ = nullptr;
  uint64_t generation_ = 0;
};

}  // namespace fm::bindings
