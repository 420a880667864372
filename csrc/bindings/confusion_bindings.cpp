// fusedmetrics._core.ConfusionPlan: the CPU confusion-matrix call.
// Python (fusedmetrics/confusion.py) validates arguments and normalises shapes;
// this layer re-checks that every element the kernels read lies inside the arrays'
// buffers, runs the kernels without the GIL, and turns an out-of-range label into
// a ValueError that names it (the matrix is then left unchanged).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <stdexcept>
#include <string>

#include "bindings/accuracy_call_checks.h"
#include "bindings/buffer_checks.h"
#include "cpu/confusion.h"
#include "cpu/confusion_direct.h"
#include "cpu/cpu_features.h"
#include "semantics/dtypes.h"

namespace py = pybind11;

namespace {

// A label as the user wrote it: uint64 labels were reinterpreted as int64.
std::string label_text(int64_t value, int code) {
  return code == fm::kU64 ? std::to_string(uint64_t(value)) : std::to_string(value);
}

class ConfusionPlan {
 public:
  // pred_code < 0: y holds scores of code y_code viewed as (N, C, M); else y holds
  // integer predictions of label code pred_code viewed as (N, M) with strides
  // ys[0], ys[2] (ys[1] must be 0).
  ConfusionPlan(int y_code, int pred_code, int64_t N, int64_t C, int64_t M, std::array<int64_t, 3> ys, int t_code,
                std::array<int64_t, 2> ts, bool has_ignore, int64_t ignore)
      : call_{fm::bindings::make_accuracy_call(pred_code < 0 ? y_code : 0, N, C, M, ys, t_code, ts, has_ignore,
                                               ignore, 1, 63),
              pred_code} {
    if (pred_code >= 0 && !fm::valid_label_code(pred_code))
      fm::bindings::invalid("pred_code must be -1 or a label code, got " + std::to_string(pred_code));
    if (pred_code >= 0 && ys[1] != 0) fm::bindings::invalid("integer predictions have no class stride");
    select();
  }

  // Adds the counts into out (C-contiguous int64 (C, C)); raises ValueError naming
  // the first out-of-range label, adding nothing.
  void count(const py::array& y, const py::array& t, py::array_t<int64_t, 0> out) {
    const auto& p = call_.a;
    const bool scores = fm::predicts_from_scores(call_);
    const int64_t y_item = scores ? fm::logit_itemsize(p.y_code) : fm::label_itemsize(call_.pred_code);
    if (y.itemsize() != y_item || t.itemsize() != fm::label_itemsize(p.t_code))
      throw std::invalid_argument("the arrays' item sizes do not match the plan");
    if (out.ndim() != 2 || out.shape(0) != p.C || out.shape(1) != p.C || !out.writeable() ||
        !(out.flags() & py::array::c_style) || (reinterpret_cast<uintptr_t>(out.data()) % alignof(int64_t)))
      throw std::invalid_argument("out must be a writeable, aligned, C-contiguous int64 array of shape (C, C)");
    const int64_t yi = y.itemsize(), ti = t.itemsize();
    const int64_t y_shape[] = {p.N, scores ? p.C : 1, p.M}, y_strides[] = {p.ys_n, p.ys_c, p.ys_m};
    const int64_t t_shape[] = {p.N, p.M}, t_strides[] = {p.ts_n, p.ts_m};
    fm::bindings::require_inside(fm::bindings::extent_of(3, y_shape, y_strides, yi, yi), y, "y");
    fm::bindings::require_inside(fm::bindings::extent_of(2, t_shape, t_strides, ti, ti), t, "t");
    if (generation_ != fm::cpu::isa_generation()) select();

    fm::ConfusionCall call = call_;
    call.a.y = y.data();
    call.a.t = t.data();
    int64_t* matrix = out.mutable_data();
    fm::cpu::InvalidSample bad;
    {
      py::gil_scoped_release release;
      bad = fm::cpu::count_confusion(call, predict_, matrix);
    }
    if (bad.row < 0) return;
    const bool t_bad = !(bad.t >= 0 && bad.t < p.C);
    const std::string range = ", outside [0, " + std::to_string(p.C) + "); nothing was counted";
    if (t_bad)
      throw py::value_error("t holds the label " + label_text(bad.t, p.t_code) + " (sample " +
                            std::to_string(bad.row) + ")" + range);
    throw py::value_error("y (integer predictions) holds the label " + label_text(bad.p, call_.pred_code) +
                          " (sample " + std::to_string(bad.row) + ")" + range);
  }

 private:
  void select() {
    generation_ = fm::cpu::isa_generation();
    predict_ = fm::cpu::select_predict(call_);
  }

  fm::ConfusionCall call_;
  fm::cpu::PredictFn predict_ = nullptr;
  uint64_t generation_ = 0;
};

}  // namespace

void bind_confusion(py::module_& m) {
  py::class_<ConfusionPlan>(m, "ConfusionPlan",
                            "Scores y viewed as (N, C, M) (or integer predictions (N, M) when pred_code >= 0) "
                            "and t as (N, M), element strides; count() adds the (C, C) counts.")
      .def(py::init<int, int, int64_t, int64_t, int64_t, std::array<int64_t, 3>, int, std::array<int64_t, 2>, bool,
                    int64_t>(),
           py::arg("y_code"), py::arg("pred_code"), py::arg("N"), py::arg("C"), py::arg("M"), py::arg("y_strides"),
           py::arg("t_code"), py::arg("t_strides"), py::arg("has_ignore"), py::arg("ignore"))
      .def("count", &ConfusionPlan::count, py::arg("y"), py::arg("t"), py::arg("out"));
  m.def("_set_confusion_spill_rows", &fm::cpu::set_confusion_spill_rows, py::arg("rows"),
        "Testing hook: rows per thread between moves of the uint32 counters into int64 ones (<= 0: default).");
  m.def("_set_confusion_direct_rows", &fm::cpu::set_confusion_direct_rows, py::arg("rows"),
        "Testing hook: rows binned at a time when C * C > N (more: labels checked first; <= 0: default).");
}
