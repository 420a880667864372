// The CPU extension fusedmetrics._core. Each binding file registers its own part.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void bind_info(py::module_& m);
void bind_dtypes(py::module_& m);
void bind_accuracy(py::module_& m);
void bind_confusion(py::module_& m);
void bind_accuracy_multi_k(py::module_& m);
void bind_summary(py::module_& m);
void bind_planner(py::module_& m);
void bind_torch_accuracy_cache(py::module_& m);
void bind_binary_accuracy(py::module_& m);

PYBIND11_MODULE(_core, m) {
  m.doc() = "fusedmetrics CPU kernels";
  bind_info(m);
  bind_dtypes(m);
  bind_accuracy(m);
  bind_confusion(m);
  bind_accuracy_multi_k(m);
  bind_summary(m);
  bind_planner(m);
  bind_torch_accuracy_cache(m);
  bind_binary_accuracy(m);
}
