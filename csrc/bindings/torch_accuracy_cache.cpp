// fusedmetrics._core.TorchAccuracyCache: accuracy_counts on torch CPU tensors in one call.
//
// Small batches are dominated by per-call overhead: each tensor attribute read from
// Python (dtype, shape, stride, data_ptr, storage) costs 0.15-0.3 us and a result tensor
// from torch.zeros 1.5 us, several times the kernel on 64 x 10 scores. Here the tensors'
// layouts come from torch's DLPack C exchange API (dlpack_exchange.h), the plan is looked
// up by that layout in C++, the kernel runs in place and the result tensor is made by
// torch's own allocator through the same table.
//
// What the plan reads: it was built (by Python, fusedmetrics/_accuracy.py) from a tensor
// of exactly this dtype, shape and strides, so it reads inside the view each tensor
// describes, as tensor.numpy() would; the GIL stays held until the last read, so no
// Python thread can free or resize the memory meanwhile. Anything unusual (another
// device, a negated view, an empty or misaligned tensor, more than 4 MiB, an ignore
// label beyond int64, an out= that is not a plain int64 (2,) tensor) is declined: the
// general path then takes the call and raises its usual errors.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>

#include "bindings/accuracy_plan.h"
#include "bindings/dlpack_exchange.h"

namespace py = pybind11;
namespace dl = fm::bindings::dlpack;

namespace {

class TorchAccuracyCache {
 public:
  // tensor_type: torch.Tensor (only exact instances are served: subclasses may redefine
  // what they hold); api_capsule: its __dlpack_c_exchange_api__.
  TorchAccuracyCache(const py::type& tensor_type, const py::object& api_capsule)
      : type_(tensor_type), capsule_(api_capsule), api_(dl::exchange_api_of(api_capsule.ptr())) {}

  // [correct, total] of (y, t) as a new int64 tensor, or added into out (a torch int64
  // (2,) tensor) and out returned. None: no plan is cached for this layout yet (Python
  // builds one and calls remember()). False: this path declines the call.
  py::object count(py::handle y, py::handle t, py::handle ignore_label, int64_t k, py::handle out) {
    Layouts in;
    if (!read_inputs(y, t, ignore_label, k, &in)) return py::bool_(false);
    int64_t* out_counts = nullptr;
    int64_t out_stride = 0;
    if (!out.is_none() && !read_out(out, &out_counts, &out_stride)) return py::bool_(false);
    const auto found = plans_.find(in.key);
    if (found == plans_.end()) return py::none();
    if (found->second.plan == nullptr) return py::bool_(false);  // needs copies: general path
    py::object keep_alive = found->second.owner;                // the map may change below
    fm::bindings::AccuracyPlan& plan = *found->second.plan;
    if (!plan.fits_in_place(in.y_addr, in.t_addr)) return py::bool_(false);
    const fm::cpu::Counts counts = plan.count_at(in.y_addr, in.t_addr);
    if (out_counts != nullptr) {
      out_counts[0] += counts.correct;
      out_counts[out_stride] += counts.total;
      return py::reinterpret_borrow<py::object>(out);
    }
    return new_counts_tensor(counts);
  }

  // Caches plan (an AccuracyPlan, or False for layouts the kernels cannot read in place)
  // for the layout of (y, t, ignore_label, k). Layouts count() would decline are skipped.
  void remember(py::handle y, py::handle t, py::handle ignore_label, int64_t k, const py::object& plan) {
    Layouts in;
    if (!read_inputs(y, t, ignore_label, k, &in)) return;
    Entry entry{plan, nullptr};
    if (!(plan.is(py::bool_(false)))) entry.plan = &plan.cast<fm::bindings::AccuracyPlan&>();
    if (plans_.size() >= kMaxPlans) plans_.clear();  // a loop that keeps changing shapes gains nothing
    plans_[in.key] = std::move(entry);
  }

  size_t size() const { return plans_.size(); }
  void clear() { plans_.clear(); }

 private:
  static constexpr size_t kMaxPlans = 256;

  struct Entry {
    py::object owner;  // keeps the plan alive
    fm::bindings::AccuracyPlan* plan;  // null: decline
  };

  struct Layouts {
    std::string key;
    uintptr_t y_addr = 0, t_addr = 0;
  };

  // The DLTensor of x when x is a CPU tensor of one-lane elements with strides; false
  // (and no Python error left) otherwise.
  bool read_cpu_tensor(py::handle x, dl::Tensor* out) const {
    if (api_->dltensor_from_py_object_no_sync(x.ptr(), out) != 0) {
      PyErr_Clear();  // meta, sparse, quantized, no storage: the general path says why
      return false;
    }
    return out->device.device_type == dl::kDLCPU && out->dtype.lanes == 1 && out->strides != nullptr &&
           out->data != nullptr;
  }

  // x.is_neg(): the exchange API describes the memory, not a pending negation.
  static bool is_negated_view(py::handle x) {
    static PyObject* name = PyUnicode_InternFromString("is_neg");
    PyObject* r = PyObject_CallMethodNoArgs(x.ptr(), name);
    if (r == nullptr) {
      PyErr_Clear();
      return true;  // cannot tell: decline
    }
    const bool negated = r != Py_False;
    Py_DECREF(r);
    return negated;
  }

  static void append(std::string* key, int64_t v) { key->append(reinterpret_cast<const char*>(&v), sizeof v); }

  static void append_layout(std::string* key, const dl::Tensor& x) {
    append(key, int64_t(x.dtype.code) << 16 | int64_t(x.dtype.bits) << 8 | x.ndim);
    for (int32_t d = 0; d < x.ndim; ++d) append(key, x.shape[d]);
    for (int32_t d = 0; d < x.ndim; ++d) append(key, x.strides[d]);
  }

  // The cache key and addresses of (y, t): both exact torch tensors (the type the API
  // came from; subclasses may redefine what they hold) on the CPU, not negated views,
  // and an ignore label that is None or an int within int64.
  bool read_inputs(py::handle y, py::handle t, py::handle ignore_label, int64_t k, Layouts* in) const {
    if (!is_tensor(y) || !is_tensor(t)) return false;
    int64_t ignore = 0;
    const bool has_ignore = !ignore_label.is_none();
    if (has_ignore) {
      if (!PyLong_CheckExact(ignore_label.ptr())) return false;
      int overflow = 0;
      ignore = PyLong_AsLongLongAndOverflow(ignore_label.ptr(), &overflow);
      if (overflow != 0 || (ignore == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return false;
      }
    }
    if (is_negated_view(y) || is_negated_view(t)) return false;
    dl::Tensor yd, td;
    if (!read_cpu_tensor(y, &yd) || !read_cpu_tensor(t, &td)) return false;
    in->key.reserve(16 * (yd.ndim + td.ndim) + 40);
    append_layout(&in->key, yd);
    append_layout(&in->key, td);
    append(&in->key, has_ignore);
    append(&in->key, ignore);
    append(&in->key, k);
    in->y_addr = reinterpret_cast<uintptr_t>(yd.data) + yd.byte_offset;
    in->t_addr = reinterpret_cast<uintptr_t>(td.data) + td.byte_offset;
    return true;
  }

  // out as (address of its first counter, stride to the second, in int64s) when it is an
  // exact torch int64 (2,) CPU tensor, aligned, not a negated view, with two distinct
  // counters; anything else goes to the general path and its error messages.
  bool read_out(py::handle out, int64_t** counts, int64_t* stride) const {
    if (!is_tensor(out)) return false;
    if (is_negated_view(out)) return false;
    dl::Tensor od;
    if (!read_cpu_tensor(out, &od)) return false;
    if (od.dtype.code != dl::kDLInt || od.dtype.bits != 64 || od.ndim != 1 || od.shape[0] != 2 ||
        od.strides[0] == 0)
      return false;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(od.data) + od.byte_offset;
    if (addr % alignof(int64_t) != 0) return false;
    *counts = reinterpret_cast<int64_t*>(addr);
    *stride = od.strides[0];
    return true;
  }

  bool is_tensor(py::handle x) const { return Py_TYPE(x.ptr()) == reinterpret_cast<PyTypeObject*>(type_.ptr()); }

  static void record_error(void* ctx, const char* kind, const char* message) {
    *static_cast<std::string*>(ctx) = std::string(kind) + ": " + message;
  }

  // A new int64 tensor [correct, total] from torch's allocator, wrapped by torch.
  py::object new_counts_tensor(const fm::cpu::Counts& counts) const {
    int64_t shape[1] = {2};
    dl::Tensor prototype{nullptr, {dl::kDLCPU, 0}, 1, {dl::kDLInt, 64, 1}, shape, nullptr, 0};
    dl::ManagedTensorVersioned* managed = nullptr;
    std::string error;
    if (api_->managed_tensor_allocator(&prototype, &managed, &error, &record_error) != 0 || managed == nullptr)
      throw std::runtime_error("torch could not allocate the counts tensor (" + error + ")");
    const dl::Tensor& made = managed->dl_tensor;
    char* base = static_cast<char*>(made.data) + made.byte_offset;
    const int64_t step = made.strides != nullptr ? made.strides[0] : 1;
    reinterpret_cast<int64_t*>(base)[0] = counts.correct;
    reinterpret_cast<int64_t*>(base)[step] = counts.total;
    void* tensor = nullptr;
    if (api_->managed_tensor_to_py_object_no_sync(managed, &tensor) != 0) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(static_cast<PyObject*>(tensor));
  }

  py::type type_;
  py::object capsule_;  // keeps the table's owner alive
  const dl::ExchangeApi* api_;
  std::unordered_map<std::string, Entry> plans_;
};

}  // namespace

void bind_torch_accuracy_cache(py::module_& m) {
  py::class_<TorchAccuracyCache>(m, "TorchAccuracyCache",
                                 "accuracy_counts on torch CPU tensors through the DLPack C exchange API; "
                                 "plans cached by layout (see fusedmetrics/_accuracy.py).")
      .def(py::init<const py::type&, const py::object&>(), py::arg("tensor_type"), py::arg("api_capsule"))
      .def("count", &TorchAccuracyCache::count, py::arg("y"), py::arg("t"), py::arg("ignore_label"), py::arg("k"),
           py::arg("out"))
      .def("remember", &TorchAccuracyCache::remember, py::arg("y"), py::arg("t"), py::arg("ignore_label"),
           py::arg("k"), py::arg("plan"))
      .def("__len__", &TorchAccuracyCache::size)
      .def("clear", &TorchAccuracyCache::clear);
}
