// Bounds checks of the CPU bindings: the byte range a normalised strided view
// touches must lie inside the numpy array it was made from, so no kernel can read
// outside a buffer whatever Python passed.
#pragma once
#include <pybind11/numpy.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace fm::bindings {

// Byte range [low, high) that a strided view touches; empty views touch nothing.
// Strides are in units of `unit` bytes. Offsets are summed in double first: a view
// reaching 2^62 bytes or more is refused, so the exact int64 sums cannot wrap around
// (a wrapped sum could pass the bounds check and let the kernels read anywhere).
struct Extent {
  int64_t low = 0, high = 0;
  bool empty = false;
};

template <class Size>
Extent extent_of(size_t ndim, const Size* shape, const Size* strides, int64_t unit, int64_t itemsize) {
  Extent e;
  double reach_bound = double(itemsize);
  for (size_t d = 0; d < ndim; ++d) {
    if (shape[d] == 0) e.empty = true;
    reach_bound += std::fabs(double(shape[d] - 1) * double(strides[d]) * double(unit));
  }
  if (e.empty) return e;
  if (!(reach_bound < 0x1p62)) throw std::out_of_range("a strided view reaches 2^62 bytes or more");
  for (size_t d = 0; d < ndim; ++d) {
    const int64_t reach = int64_t(shape[d] - 1) * int64_t(strides[d]) * unit;
    (reach < 0 ? e.low : e.high) += reach;
  }
  e.high += itemsize;
  return e;
}

inline Extent array_extent(const pybind11::array& a) {
  return extent_of(size_t(a.ndim()), a.shape(), a.strides(), 1, a.itemsize());
}

// Also refuses a misaligned buffer: the kernels read elements through typed pointers
// (Python copies misaligned inputs before they get here).
inline void require_inside(const Extent& view, const pybind11::array& a, const char* name) {
  if (view.empty) return;
  const Extent arr = array_extent(a);
  if (arr.empty || view.low < arr.low || view.high > arr.high)
    throw std::out_of_range(std::string("internal error: the normalised view of ") + name +
                            " reaches outside its buffer");
  if (reinterpret_cast<uintptr_t>(a.data()) % uintptr_t(a.itemsize()) != 0)
    throw std::invalid_argument(std::string("internal error: ") + name + " is not aligned to its item size");
}

}  // namespace fm::bindings
