// Binds fusedmetrics._core.RankHistogramPlan (the class: rank_histogram_plan.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/rank_histogram_plan.h"

namespace py = pybind11;

using fm::bindings::RankHistogramPlan;

void bind_accuracy_multi_k(py::module_& m) {
  py::class_<RankHistogramPlan>(m, "RankHistogramPlan",
                                "As AccuracyPlan with k = kmax; count() returns [rank histogram (kmax + 1), total].")
      .def(py::init<int, int64_t, int64_t, int64_t, std::array<int64_t, 3>, int, std::array<int64_t, 2>, bool,
                    int64_t, int64_t>(),
           py::arg("y_code"), py::arg("N"), py::arg("C"), py::arg("M"), py::arg("y_strides"), py::arg("t_code"),
           py::arg("t_strides"), py::arg("has_ignore"), py::arg("ignore"), py::arg("kmax"))
      .def("count", &RankHistogramPlan::count, py::arg("y"), py::arg("t"));
}
