// fusedmetrics._cuda.ConfusionPlan: the CUDA half of a confusion-matrix call,
// validated once per call shape with the same checks as _core.ConfusionPlan (plus
// the kernels' C < 2^31); launch() checks only the pointers. Compiled by the host
// compiler (nvcc never sees pybind11).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "bindings/accuracy_call_checks.h"
#include "cuda/fm_cuda.h"
#include "semantics/dtypes.h"

namespace py = pybind11;

namespace {

class ConfusionPlan {
 public:
  ConfusionPlan(int y_code, int pred_code, std::int64_t N, std::int64_t C, std::int64_t M,
                std::array<std::int64_t, 3> ys, int t_code, std::array<std::int64_t, 2> ts, bool has_ignore,
                std::int64_t ignore)
      : call_{fm::bindings::make_accuracy_call(pred_code < 0 ? y_code : 0, N, C, M, ys, t_code, ts, has_ignore,
                                               ignore, 1, 31),
              pred_code} {
    if (pred_code >= 0 && !fm::valid_label_code(pred_code))
      fm::bindings::invalid("pred_code must be -1 or a label code, got " + std::to_string(pred_code));
    if (pred_code >= 0 && ys[1] != 0) fm::bindings::invalid("integer predictions have no class stride");
  }

  // Adds the counts into the C * C uint64 at matrix_ptr and the out-of-range count
  // into the uint64 at invalid_ptr (unless it is 0), on stream_ptr. One launch, no
  // synchronisation.
  void launch(std::uintptr_t y_ptr, std::uintptr_t t_ptr, std::uintptr_t matrix_ptr, std::uintptr_t invalid_ptr,
              int device_id, std::uintptr_t stream_ptr) const {
    const fm::AccuracyCall& a = call_.a;
    if (device_id < 0) throw py::value_error("ConfusionPlan.launch: device_id must be >= 0");
    if (matrix_ptr % 8 != 0 || (a.C > 0 && matrix_ptr == 0) || invalid_ptr % 8 != 0)
      throw py::value_error("ConfusionPlan.launch: matrix_ptr must be non-null and 8-byte aligned, invalid_ptr "
                            "8-byte aligned (0: do not count out-of-range samples)");
    if (a.N == 0 || a.M == 0) return;
    if (t_ptr == 0 || t_ptr % fm::label_itemsize(a.t_code) != 0)
      throw py::value_error("ConfusionPlan.launch: t_ptr must be non-null and aligned to the label itemsize");
    const int y_item = call_.pred_code < 0 ? fm::logit_itemsize(a.y_code) : fm::label_itemsize(call_.pred_code);
    const bool reads_y = call_.pred_code >= 0 || a.C > 0;
    if (reads_y && (y_ptr == 0 || y_ptr % y_item != 0))
      throw py::value_error("ConfusionPlan.launch: y_ptr must be non-null and aligned to its itemsize");
    fm::ConfusionCall call = call_;
    call.a.y = reinterpret_cast<const void*>(y_ptr);
    call.a.t = reinterpret_cast<const void*>(t_ptr);
    int code;
    {
      py::gil_scoped_release release;
      code = fm::cuda::launch_confusion_counts(call, matrix_ptr, invalid_ptr, device_id, stream_ptr);
    }
    if (code != 0)
      throw std::runtime_error("fusedmetrics._cuda.ConfusionPlan.launch: CUDA error " + std::to_string(code) + " (" +
                               fm::cuda::error_string(code) + ")");
  }

 private:
  fm::ConfusionCall call_;
};

}  // namespace

void bind_confusion_cuda(py::module_& m) {
  py::class_<ConfusionPlan>(m, "ConfusionPlan",
                            "As _core.ConfusionPlan, on the device: launch() adds the counts and the number of "
                            "out-of-range samples.")
      .def(py::init<int, int, std::int64_t, std::int64_t, std::int64_t, std::array<std::int64_t, 3>, int,
                    std::array<std::int64_t, 2>, bool, std::int64_t>(),
           py::arg("y_code"), py::arg("pred_code"), py::arg("N"), py::arg("C"), py::arg("M"), py::arg("y_strides"),
           py::arg("t_code"), py::arg("t_strides"), py::arg("has_ignore"), py::arg("ignore"))
      .def("launch", &ConfusionPlan::launch, py::arg("y_ptr"), py::arg("t_ptr"), py::arg("matrix_ptr"),
           py::arg("invalid_ptr"), py::arg("device_id"), py::arg("stream_ptr"));
}
