// The CUDA extension fusedmetrics._cuda: pybind11 glue over the plain C++ launchers
// in fm_cuda.h. Compiled by the host compiler (nvcc never sees pybind11).
//
// Device pointers and streams arrive as integers (CuPy's data.ptr, stream.ptr, or
// __cuda_array_interface__ values). Everything that could make a kernel read out of
// bounds or misaligned is checked here first: a fault inside a kernel would poison
// the CUDA context of the whole process, CuPy's included.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings/accuracy_call_checks.h"
#include "cuda/fm_cuda.h"
#include "semantics/dtypes.h"

namespace py = pybind11;

void bind_confusion_cuda(py::module_& m);  // confusion_plan.cpp

namespace {

void check_cuda(int code, const char* what) {
  if (code != 0)
    throw std::runtime_error(std::string("fusedmetrics._cuda.") + what + ": CUDA error " +
                             std::to_string(code) + " (" + fm::cuda::error_string(code) + ")");
}

[[noreturn]] void value_error(const std::string& msg) { throw py::value_error(msg); }

// The CUDA half of an accuracy call, validated once per call shape (the same
// constructor and checks as _core.AccuracyPlan, plus the kernels' C < 2^31);
// launch() checks only the pointers.
class AccuracyPlan {
 public:
  AccuracyPlan(int y_code, std::int64_t N, std::int64_t C, std::int64_t M, std::array<std::int64_t, 3> ys,
               int t_code, std::array<std::int64_t, 2> ts, bool has_ignore, std::int64_t ignore, std::int64_t k)
      : call_(fm::bindings::make_accuracy_call(y_code, N, C, M, ys, t_code, ts, has_ignore, ignore, k, 31)) {}

  // Adds [correct, total] into the two uint64 at out_ptr, on stream_ptr.
  void launch(std::uintptr_t y_ptr, std::uintptr_t t_ptr, std::uintptr_t out_ptr, int device_id,
              std::uintptr_t stream_ptr) const {
    if (device_id < 0) value_error("AccuracyPlan.launch: device_id must be >= 0");
    if (out_ptr == 0 || out_ptr % 8 != 0)
      value_error("AccuracyPlan.launch: out_ptr must be a non-null 8-byte aligned pointer");
    if (call_.N == 0 || call_.M == 0) return;  // no rows: nothing to read
    if (t_ptr == 0 || t_ptr % fm::label_itemsize(call_.t_code) != 0)
      value_error("AccuracyPlan.launch: t_ptr must be non-null and aligned to the label itemsize");
    if (call_.C > 0 && (y_ptr == 0 || y_ptr % fm::logit_itemsize(call_.y_code) != 0))
      value_error("AccuracyPlan.launch: y_ptr must be non-null and aligned to the logit itemsize");
    fm::AccuracyCall call = call_;
    call.y = reinterpret_cast<const void*>(y_ptr);
    call.t = reinterpret_cast<const void*>(t_ptr);
    int code;
    {
      py::gil_scoped_release release;  // a launch can block when the launch queue is full
      code = fm::cuda::launch_accuracy_counts(call, out_ptr, device_id, stream_ptr);
    }
    check_cuda(code, "AccuracyPlan.launch");
  }

 private:
  fm::AccuracyCall call_;
};

const std::string kLastScalar = std::to_string(fm::kNumScalarTypes - 1);

void summary_update(const std::vector<std::int64_t>& slots, const std::vector<std::uintptr_t>& x_ptrs,
                    const std::vector<int>& x_codes, const std::vector<std::uintptr_t>& w_ptrs,
                    const std::vector<int>& w_codes, const std::vector<double>& w_consts,
                    std::uintptr_t state_ptr, int device_id, std::uintptr_t stream_ptr,
                    std::int64_t capacity) {
  const std::size_t n = slots.size();
  if (x_ptrs.size() != n || x_codes.size() != n || w_ptrs.size() != n || w_codes.size() != n ||
      w_consts.size() != n)
    value_error("summary_update: slots, x_ptrs, x_codes, w_ptrs, w_codes and w_consts must have the same length");
  if (n == 0) return;
  if (state_ptr == 0 || state_ptr % 8 != 0) value_error("summary_update: state_ptr must be a non-null 8-byte aligned pointer");
  if (device_id < 0) value_error("summary_update: device_id must be >= 0");
  if (capacity < 0) value_error("summary_update: capacity must be >= 0");
  // Slots travel as int32 in the kernel's parameter struct.
  const std::int64_t limit = capacity < INT32_MAX ? capacity : std::int64_t(INT32_MAX);
  std::vector<fm::cuda::SummaryEntry> entries(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (slots[i] < 0 || slots[i] >= limit)
      value_error("summary_update: slot " + std::to_string(slots[i]) + " is outside [0, " +
                  std::to_string(limit) + ")");
    if (!fm::valid_scalar_code(x_codes[i]))
      value_error("summary_update: x_codes[" + std::to_string(i) + "] must be 0.." + kLastScalar);
    if (x_ptrs[i] == 0 || x_ptrs[i] % fm::scalar_itemsize(x_codes[i]) != 0)
      value_error("summary_update: x_ptrs[" + std::to_string(i) + "] must be non-null and aligned");
    if (w_ptrs[i] != 0) {
      if (!fm::valid_scalar_code(w_codes[i]))
        value_error("summary_update: w_codes[" + std::to_string(i) + "] must be 0.." + kLastScalar);
      if (w_ptrs[i] % fm::scalar_itemsize(w_codes[i]) != 0)
        value_error("summary_update: w_ptrs[" + std::to_string(i) + "] is not aligned");
    }
    entries[i] = fm::cuda::SummaryEntry{slots[i], x_ptrs[i], x_codes[i], w_ptrs[i], w_codes[i], w_consts[i]};
  }
  int code;
  {
    py::gil_scoped_release release;
    code = fm::cuda::launch_summary_update(entries.data(), std::int64_t(n), state_ptr, device_id, stream_ptr);
  }
  check_cuda(code, "summary_update");
}

void summary_statistics(std::uintptr_t state_ptr, std::int64_t capacity, std::uintptr_t slots_ptr,
                        std::uintptr_t host_ptr, std::int64_t n, std::uintptr_t mean_ptr,
                        std::uintptr_t std_ptr, int device_id, std::uintptr_t stream_ptr) {
  if (n < 0) value_error("summary_statistics: n must be >= 0");
  if (n == 0) return;
  for (std::uintptr_t p : {state_ptr, slots_ptr, host_ptr, mean_ptr, std_ptr})
    if (p == 0 || p % 8 != 0) value_error("summary_statistics: every pointer must be non-null and 8-byte aligned");
  if (capacity < 0) value_error("summary_statistics: capacity must be >= 0");
  if (device_id < 0) value_error("summary_statistics: device_id must be >= 0");
  int code;
  {
    py::gil_scoped_release release;
    code = fm::cuda::launch_summary_statistics(state_ptr, capacity, slots_ptr, host_ptr, n, mean_ptr,
                                               std_ptr, device_id, stream_ptr);
  }
  check_cuda(code, "summary_statistics");
}

void stream_wait(std::uintptr_t waited, std::uintptr_t waiting, int device_id) {
  if (device_id < 0) value_error("stream_wait: device_id must be >= 0");
  int code;
  {
    py::gil_scoped_release release;
    code = fm::cuda::stream_wait(waited, waiting, device_id);
  }
  check_cuda(code, "stream_wait");
}

py::dict build_info() {
  py::dict d;
  const int rt = fm::cuda::runtime_version();
  d["cuda_runtime_version"] = rt;  // compiled against, e.g. 13000
  d["cuda_version"] = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
#ifdef FM_CUDA_ARCHS
  d["cuda_architectures"] = FM_CUDA_ARCHS;
#else
  d["cuda_architectures"] = "";
#endif
#ifdef FM_CUDA_COMPILER
  d["cuda_compiler"] = FM_CUDA_COMPILER;
#else
  d["cuda_compiler"] = "";
#endif
  d["cuda_driver_version"] = fm::cuda::driver_version();  // 0 without a driver
  d["cuda_runtime_linkage"] = "static";
  d["summary_entries_per_launch"] = fm::cuda::summary_entries_per_launch();
  return d;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fusedmetrics CUDA kernels (pointers and streams are passed as integers)";
  m.def("device_count", &fm::cuda::device_count,
        "Number of usable CUDA devices; 0 without a driver or device. Never raises.");
  m.def("build_info", &build_info, "CUDA runtime/architectures this module was built with, and the driver version (0 if none).");
  py::class_<AccuracyPlan>(m, "AccuracyPlan",
                           "y viewed as (N, C, M) and t as (N, M), element strides, validated once; "
                           "launch() adds [correct, total] on the device.")
      .def(py::init<int, std::int64_t, std::int64_t, std::int64_t, std::array<std::int64_t, 3>, int,
                    std::array<std::int64_t, 2>, bool, std::int64_t, std::int64_t>(),
           py::arg("y_code"), py::arg("N"), py::arg("C"), py::arg("M"), py::arg("y_strides"), py::arg("t_code"),
           py::arg("t_strides"), py::arg("has_ignore"), py::arg("ignore"), py::arg("k"))
      .def("launch", &AccuracyPlan::launch, py::arg("y_ptr"), py::arg("t_ptr"), py::arg("out_ptr"),
           py::arg("device_id"), py::arg("stream_ptr"),
           "Adds [correct, total] into the two uint64 at out_ptr, on stream_ptr. One launch, no "
           "allocation, no synchronisation.");
  m.def("summary_update", &summary_update, py::arg("slots"), py::arg("x_ptrs"), py::arg("x_codes"),
        py::arg("w_ptrs"), py::arg("w_codes"), py::arg("w_consts"), py::arg("state_ptr"),
        py::arg("device_id"), py::arg("stream_ptr"), py::arg("capacity"),
        "Folds the scalars at x_ptrs (weights at w_ptrs, or w_consts where 0) into the float64 "
        "(capacity, 3) state table [W, mean, M2] with the West update; one launch per "
        "summary_entries_per_launch entries. Every slot must lie in [0, capacity).");
  m.def("summary_statistics", &summary_statistics, py::arg("state_ptr"), py::arg("capacity"),
        py::arg("slots_ptr"), py::arg("host_ptr"), py::arg("n"), py::arg("mean_ptr"),
        py::arg("std_ptr"), py::arg("device_id"), py::arg("stream_ptr"),
        "mean/std (population, variance clamped at 0) of the Chan merge of host moments (n, 3) "
        "with the device states at slots (int64, n); all device pointers; one launch.");
  m.def("stream_wait", &stream_wait, py::arg("waited"), py::arg("waiting"), py::arg("device_id"),
        "Makes stream `waiting` wait for the work queued on stream `waited` so far (an event, no "
        "host sync; capture-safe). Nothing when both are the same handle.");
  bind_confusion_cuda(m);
  m.def("pointer_device", &fm::cuda::pointer_device, py::arg("ptr"),
        "The device owning a device pointer, or -1 when unknown. Never raises.");
  m.attr("SUMMARY_ENTRIES_PER_LAUNCH") = fm::cuda::summary_entries_per_launch();
}
