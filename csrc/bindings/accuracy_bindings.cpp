// Binds fusedmetrics._core.AccuracyPlan (the class: accuracy_plan.h).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bindings/accuracy_plan.h"

namespace py = pybind11;

using fm::bindings::AccuracyPlan;


void bind_accuracy(py::module_& m) {
  py::class_<AccuracyPlan>(m, "AccuracyPlan",
                           "y viewed as (N, C, M) and t as (N, M), element strides; count() adds [correct, total].")
      .def(py::init<int, int64_t, int64_t, int64_t, std::array<int64_t, 3>, int, std::array<int64_t, 2>, bool,
                    int64_t, int64_t>(),
           py::arg("y_code"), py::arg("N"), py::arg("C"), py::arg("M"), py::arg("y_strides"), py::arg("t_code"),
           py::arg("t_strides"), py::arg("has_ignore"), py::arg("ignore"), py::arg("k"))
      .def("count", &AccuracyPlan::count, py::arg("y"), py::arg("t"), py::arg("out"))
      .def("candidates", &AccuracyPlan::candidates)
      .def("planner_state", &AccuracyPlan::planner_state)
      .def("count_with", &AccuracyPlan::count_with, py::arg("name"), py::arg("max_threads"), py::arg("y"),
           py::arg("t"), py::arg("out"))
      .def("count_torch", &AccuracyPlan::count_torch, py::arg("y_storage"), py::arg("y_ptr"), py::arg("t_storage"),
           py::arg("t_ptr"), py::arg("out_ptr"));
}
