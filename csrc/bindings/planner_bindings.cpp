// fusedmetrics._core planner functions: the mode, the wisdom table as plain data, and
// the test hooks (fake timings, a count of timed calls). fusedmetrics/planner.py wraps them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <stdexcept>
#include <string>

#include "cpu/planner.h"

namespace py = pybind11;

namespace {

py::dict decision_to_dict(const fm::cpu::Decision& d) {
  py::dict out;
  out["kernel"] = d.kernel;
  out["max_threads"] = d.max_threads;
  out["median_s"] = d.median_s;
  out["heuristic_s"] = d.heuristic_s;
  out["planning_calls"] = d.planning_calls;
  out["overhead_s"] = d.overhead_s;
  return out;
}

}  // namespace

void bind_planner(py::module_& m) {
  m.def("planner_mode", [] { return fm::cpu::planner_mode() == fm::cpu::PlannerMode::kMeasure ? "measure" : "heuristic"; });
  m.def(
      "set_planner_mode",
      [](const std::string& mode) {
        if (mode == "measure") return fm::cpu::set_planner_mode(fm::cpu::PlannerMode::kMeasure);
        if (mode == "heuristic") return fm::cpu::set_planner_mode(fm::cpu::PlannerMode::kHeuristic);
        throw std::invalid_argument("planner mode must be 'heuristic' or 'measure'; got '" + mode + "'");
      },
      py::arg("mode"));
  m.def("planner_wisdom", [] {
    py::dict out;
    for (const auto& [key, d] : fm::cpu::planner_wisdom()) out[py::str(key)] = decision_to_dict(d);
    return out;
  });
  // Python (planner.py) has validated the entries: signature -> (kernel, max_threads).
  m.def(
      "load_planner_wisdom",
      [](const std::map<std::string, std::pair<std::string, int>>& entries) {
        std::map<std::string, fm::cpu::Decision> decisions;
        for (const auto& [key, e] : entries) {
          fm::cpu::Decision d;
          d.kernel = e.first;
          d.max_threads = e.second;
          decisions[key] = d;
        }
        fm::cpu::load_planner_wisdom(decisions);
      },
      py::arg("entries"));
  m.def("clear_planner_wisdom", &fm::cpu::clear_planner_wisdom);
  m.def("_planner_set_fake_timings", &fm::cpu::set_fake_timings, py::arg("seconds"),
        "Tests: every timed call counts these seconds ('<name>@<cap>' or '<name>' keys); {} measures again.");
  m.def("_planner_timed_calls", &fm::cpu::planner_timed_calls);
}
