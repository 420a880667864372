// Registers the summary part of fusedmetrics._core: DictSummaryState (the host
// core of Summary / DictSummary) and merge_moment_stack (the Chan merge of many
// summaries' tables at once, for the multi-node evaluator).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "dict_summary_state.h"
#include "semantics/moments.h"

namespace py = pybind11;

namespace {

// Chan-merges a (P, K, C) stack, C >= 3, of rows [W, mean, M2, ...] along the
// first axis, in order: ((s[0] + s[1]) + s[2]) + ... with fm::moments_merge,
// the arithmetic of DictSummary.merge, so both give the same bits. Columns past
// the third are ignored. Returns float64 (K, 3); P == 0 gives empty rows.
py::array_t<double> merge_moment_stack(py::array_t<double, py::array::forcecast> stack) {
  if (stack.ndim() != 3 || stack.shape(2) < 3) {
    throw py::value_error("stack must have shape (P, K, C) with C >= 3; got " +
                          std::string(py::str(stack.attr("shape"))));
  }
  const auto in = stack.unchecked<3>();
  const py::ssize_t parts = in.shape(0), keys = in.shape(1);
  py::array_t<double> out({keys, py::ssize_t(3)});
  auto o = out.mutable_unchecked<2>();
  for (py::ssize_t k = 0; k < keys; ++k) {
    fm::Moments acc{0.0, 0.0, 0.0};
    if (parts > 0) acc = fm::Moments{in(0, k, 0), in(0, k, 1), in(0, k, 2)};
    for (py::ssize_t p = 1; p < parts; ++p) {
      const fm::Moments next{in(p, k, 0), in(p, k, 1), in(p, k, 2)};
      if (std::isinf(acc.weight + next.weight) && !std::isinf(acc.weight) && !std::isinf(next.weight)) {
        PyErr_Format(PyExc_OverflowError,
                     "merge_moment_stack: the total weight of key %zd overflows float64 at part %zd", k, p);
        throw py::error_already_set();
      }
      acc = fm::moments_merge(acc, next);
    }
    o(k, 0) = acc.weight;
    o(k, 1) = acc.mean;
    o(k, 2) = acc.m2;
  }
  return out;
}

}  // namespace

void bind_summary(py::module_& m) {
  using fmpy::DictSummaryState;
  py::class_<DictSummaryState>(m, "DictSummaryState",
                               "Host state of fusedmetrics.DictSummary: float64 (W, mean, M2) per key.")
      .def(py::init<>())
      .def("__len__", &DictSummaryState::size)
      .def("add", &DictSummaryState::add, py::arg("d"),
           "Validates and adds a dict; returns None, or (slots, values, weights) of its device values "
           "with the batch left pending (commit_pending / discard_pending).")
      .def("add_item", &DictSummaryState::add_item, py::arg("key"), py::arg("value"), py::arg("weight"))
      .def("commit_pending", &DictSummaryState::commit_pending)
      .def("discard_pending", &DictSummaryState::discard_pending)
      .def("names", &DictSummaryState::names)
      .def("moments", &DictSummaryState::moments)
      .def("merged_moments", &DictSummaryState::merged_moments, py::arg("device_rows"))
      .def("integer_weights", &DictSummaryState::integer_weights)
      .def("device_slots", &DictSummaryState::device_slots)
      .def("has_device", &DictSummaryState::has_device)
      .def("compute_mean", &DictSummaryState::compute_mean)
      .def("make_statistics", &DictSummaryState::make_statistics)
      .def("statistics_of", &DictSummaryState::statistics_of, py::arg("slot"))
      .def("combine", &DictSummaryState::combine, py::arg("names"), py::arg("moments"),
           py::arg("integer_weights"), py::arg("merge"))
      .def("clear", &DictSummaryState::clear)
      .def("snapshot", &DictSummaryState::snapshot,
           "(names, moments, integer_weights) read at one moment (no other thread's add() half seen).");
  m.def("merge_moment_stack", &merge_moment_stack, py::arg("stack"),
        "Chan-merges a (P, K, C>=3) float64 stack of [W, mean, M2, ...] rows along axis 0, in order; "
        "returns (K, 3). The same arithmetic as DictSummary.merge (fm::moments_merge).");
}
