// fusedmetrics._core.binary_accuracy_counts: the CPU binary-accuracy count.
// Python (fusedmetrics/_binary_accuracy.py) checks dtypes and shapes and passes
// C-contiguous arrays; this layer re-checks what the kernel relies on (sizes,
// item sizes, contiguity, alignment) and counts without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cpu/binary_accuracy.h"
#include "semantics/dtypes.h"

namespace py = pybind11;

namespace {

void require_readable(const py::array& a, int64_t itemsize, const char* name) {
  if (a.itemsize() != itemsize)
    throw std::invalid_argument(std::string(name) + "'s item size does not match its dtype code");
  if (!(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be C-contiguous");
  if (reinterpret_cast<uintptr_t>(a.data()) % uintptr_t(itemsize))
    throw std::invalid_argument(std::string(name) + " must be aligned");
}

void binary_accuracy_counts(const py::array& y, int y_code, const py::array& t, int t_code,
                            py::array_t<int64_t, 0> out) {
  if (!fm::valid_logit_code(y_code)) throw std::invalid_argument("y_code is not a logit dtype code");
  if (!fm::valid_label_code(t_code)) throw std::invalid_argument("t_code is not a label dtype code");
  if (y.size() != t.size()) throw std::invalid_argument("y and t must have the same number of elements");
  require_readable(y, fm::logit_itemsize(y_code), "y");
  require_readable(t, fm::label_itemsize(t_code), "t");
  if (out.ndim() != 1 || out.shape(0) != 2 || !out.writeable() || !(out.flags() & py::array::c_style) ||
      reinterpret_cast<uintptr_t>(out.data()) % alignof(int64_t))
    throw std::invalid_argument("out must be a writeable, aligned, contiguous int64 array of shape (2,)");
  int64_t counts[2] = {0, 0};
  {
    py::gil_scoped_release release;
    fm::cpu::count_binary_accuracy(y.data(), y_code, t.data(), t_code, int64_t(y.size()), counts);
  }
  int64_t* target = out.mutable_data();
  target[0] += counts[0];
  target[1] += counts[1];
}

}  // namespace

void bind_binary_accuracy(py::module_& m) {
  m.def("binary_accuracy_counts", &binary_accuracy_counts, py::arg("y"), py::arg("y_code"), py::arg("t"),
        py::arg("t_code"), py::arg("out"),
        "Adds [correct, total] of C-contiguous scores y against labels t (binary_accuracy's rule) into out.");
}
