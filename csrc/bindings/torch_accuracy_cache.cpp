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

#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindings/accuracy_plan.h"
#include "bindings/dlpack_exchange.h"
#include "bindings/rank_histogram_plan.h"

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
    Call in;
    if (!read_call(kAccuracy, y, t, ignore_label, k, out, 1, &in)) return py::bool_(false);
    const auto found = plans_.find(in.key);
    if (found == plans_.end()) return py::none();
    const Entry entry = found->second;  // a copy: the map may change below
    if (entry.accuracy == nullptr || !entry.accuracy->fits_in_place(in.y_addr, in.t_addr)) return py::bool_(false);
    const fm::cpu::Counts counts = entry.accuracy->count_at(in.y_addr, in.t_addr);
    return deliver({counts.correct, counts.total}, false, out, in.out);
  }

  // Top-k counts for several k in one pass: row i = [correct for ks[i], total], as a new
  // int64 (len(ks), 2) tensor or added into out (a torch int64 (len(ks), 2) tensor).
  // None and False as for count(); the plan is cached under max(ks).
  py::object topk(py::handle y, py::handle t, py::handle ignore_label, const std::vector<int64_t>& ks,
                  py::handle out) {
    if (ks.empty()) return py::bool_(false);
    int64_t kmax = ks[0];
    for (int64_t k : ks) {
      if (k < 1) return py::bool_(false);  // Python checks k; below[k] must stay in range regardless
      kmax = k > kmax ? k : kmax;
    }
    Call in;
    if (!read_call(kTopK, y, t, ignore_label, kmax, out, int64_t(ks.size()), &in)) return py::bool_(false);
    const auto found = plans_.find(in.key);
    if (found == plans_.end()) return py::none();
    const Entry entry = found->second;
    if (entry.histogram == nullptr || !entry.histogram->fits_in_place(in.y_addr, in.t_addr)) return py::bool_(false);
    // hist[r] = rows whose target has rank r (r < bins - 1) or >= bins - 1 (the last bin),
    // then the total; correct(k) = rows of rank < k.
    const int64_t bins = entry.histogram->kmax() + 1;
    std::vector<int64_t> hist(size_t(bins + 1), 0);
    entry.histogram->histogram_at(in.y_addr, in.t_addr, hist.data());
    std::vector<int64_t> below(size_t(bins), 0);  // below[r] = rows of rank < r, r < bins
    for (int64_t r = 1; r < bins; ++r) below[size_t(r)] = below[size_t(r - 1)] + hist[size_t(r - 1)];
    std::vector<int64_t> rows;
    rows.reserve(2 * ks.size());
    for (int64_t k : ks) {
      rows.push_back(below[size_t(k < bins - 1 ? k : bins - 1)]);
      rows.push_back(hist[size_t(bins)]);
    }
    return deliver(rows, true, out, in.out);
  }

  // Caches plan (an AccuracyPlan, or False for layouts the kernels cannot read in place)
  // for the layout of (y, t, ignore_label, k). Layouts count() would decline are skipped.
  void remember(py::handle y, py::handle t, py::handle ignore_label, int64_t k, const py::object& plan) {
    store(kAccuracy, y, t, ignore_label, k, plan);
  }

  // As remember, for topk: plan is a RankHistogramPlan (or False) made for max(ks).
  void remember_topk(py::handle y, py::handle t, py::handle ignore_label, int64_t kmax, const py::object& plan) {
    store(kTopK, y, t, ignore_label, kmax, plan);
  }

  size_t size() const { return plans_.size(); }
  void clear() { plans_.clear(); }

 private:
  static constexpr size_t kMaxPlans = 256;

  enum Kind : int64_t { kAccuracy = 1, kTopK = 2 };

  struct Entry {
    py::object owner;  // keeps the plan alive
    fm::bindings::AccuracyPlan* accuracy = nullptr;  // kAccuracy entries; null: decline
    fm::bindings::RankHistogramPlan* histogram = nullptr;  // kTopK entries; null: decline
  };

  // Where counts are added: rows x 2 int64s at first + i * row_stride + j * col_stride.
  struct Counter {
    int64_t* first = nullptr;  // null: a new tensor
    int64_t row_stride = 0, col_stride = 0;
  };

  // One call as the cache sees it: the plan key and where to read and add.
  struct Call {
    std::string key;
    uintptr_t y_addr = 0, t_addr = 0;
    Counter out;
  };

  void store(Kind kind, py::handle y, py::handle t, py::handle ignore_label, int64_t k, const py::object& plan) {
    Call in;
    if (!read_call(kind, y, t, ignore_label, k, py::none(), 1, &in)) return;
    Entry entry{plan};
    if (!plan.is(py::bool_(false))) {
      if (kind == kAccuracy)
        entry.accuracy = &plan.cast<fm::bindings::AccuracyPlan&>();
      else
        entry.histogram = &plan.cast<fm::bindings::RankHistogramPlan&>();
    }
    if (plans_.size() >= kMaxPlans) plans_.clear();  // a loop that keeps changing shapes gains nothing
    plans_[in.key] = std::move(entry);
  }

  // values (rows x 2, row-major) added into out, or as a new tensor: (rows, 2) when
  // matrix, else (2,).
  py::object deliver(const std::vector<int64_t>& values, bool matrix, py::handle out, const Counter& counter) const {
    const int64_t rows = int64_t(values.size() / 2);
    if (counter.first == nullptr) return new_int64_tensor(values, rows, matrix);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < 2; ++j)
        counter.first[i * counter.row_stride + j * counter.col_stride] += values[size_t(2 * i + j)];
    return py::reinterpret_borrow<py::object>(out);
  }

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
    append(key, int64_t(x.dtype.code) << 8 | int64_t(x.dtype.bits));
    append(key, x.ndim);
    for (int32_t d = 0; d < x.ndim; ++d) append(key, x.shape[d]);
    for (int32_t d = 0; d < x.ndim; ++d) append(key, x.strides[d]);
  }

  // The call's key, addresses and counter when it is one this path serves: y, t (and out
  // when given) exact torch tensors (the type the table came from; subclasses may
  // redefine what they hold) on the CPU and not negated views, an ignore label that is
  // None or an int within int64, and an out that read_out takes. Every check that runs
  // Python code (is_neg) comes before the layouts are read: nothing can run between
  // reading an address and the last use of it.
  bool read_call(Kind kind, py::handle y, py::handle t, py::handle ignore_label, int64_t k, py::handle out,
                 int64_t out_rows, Call* in) const {
    const bool has_out = !out.is_none();
    if (!is_tensor(y) || !is_tensor(t) || (has_out && !is_tensor(out))) return false;
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
    if (is_negated_view(y) || is_negated_view(t) || (has_out && is_negated_view(out))) return false;
    dl::Tensor yd, td;
    if (!read_cpu_tensor(y, &yd) || !read_cpu_tensor(t, &td)) return false;
    if (has_out && !read_out(out, kind == kTopK, out_rows, &in->out)) return false;
    in->key.reserve(16 * (yd.ndim + td.ndim) + 64);
    append(&in->key, kind);
    append_layout(&in->key, yd);
    append_layout(&in->key, td);
    append(&in->key, has_ignore);
    append(&in->key, ignore);
    append(&in->key, k);
    in->y_addr = reinterpret_cast<uintptr_t>(yd.data) + yd.byte_offset;
    in->t_addr = reinterpret_cast<uintptr_t>(td.data) + td.byte_offset;
    return true;
  }

  // out as a Counter when it is an int64 CPU tensor of shape (rows, 2) when matrix, else
  // (2,) (rows == 1), aligned, whose counters are distinct memory; anything else goes to
  // the general path and its error messages.
  bool read_out(py::handle out, bool matrix, int64_t rows, Counter* counter) const {
    dl::Tensor od;
    if (!read_cpu_tensor(out, &od)) return false;
    if (od.dtype.code != dl::kDLInt || od.dtype.bits != 64) return false;
    const uintptr_t addr = reinterpret_cast<uintptr_t>(od.data) + od.byte_offset;
    if (addr % alignof(int64_t) != 0) return false;
    counter->first = reinterpret_cast<int64_t*>(addr);
    if (!matrix) {  // accuracy's (2,)
      counter->col_stride = od.strides[0];
      return od.ndim == 1 && od.shape[0] == 2 && counter->col_stride != 0;
    }
    if (od.ndim != 2 || od.shape[0] != rows || od.shape[1] != 2) return false;
    counter->row_stride = od.strides[0];
    counter->col_stride = od.strides[1];
    // Distinct counters: the two columns differ, and rows do not meet (row-major or
    // column-major steps only; other layouts take the general path).
    const int64_t r = counter->row_stride < 0 ? -counter->row_stride : counter->row_stride;
    const int64_t c = counter->col_stride < 0 ? -counter->col_stride : counter->col_stride;
    return c != 0 && (rows == 1 || r / 2 >= c || (r != 0 && c / rows >= r));  // divisions: no overflow
  }

  bool is_tensor(py::handle x) const { return Py_TYPE(x.ptr()) == reinterpret_cast<PyTypeObject*>(type_.ptr()); }

  static void record_error(void* ctx, const char* kind, const char* message) {
    *static_cast<std::string*>(ctx) = std::string(kind) + ": " + message;
  }

  // A new int64 tensor of values (rows x 2) from torch's allocator, wrapped by torch:
  // shape (rows, 2) when matrix, else (2,).
  py::object new_int64_tensor(const std::vector<int64_t>& values, int64_t rows, bool matrix) const {
    int64_t shape[2] = {rows, 2};
    dl::Tensor prototype{nullptr, {dl::kDLCPU, 0}, matrix ? 2 : 1, {dl::kDLInt, 64, 1}, matrix ? shape : shape + 1,
                         nullptr, 0};
    dl::ManagedTensorVersioned* managed = nullptr;
    std::string error;
    if (api_->managed_tensor_allocator(&prototype, &managed, &error, &record_error) != 0 || managed == nullptr)
      throw std::runtime_error("torch could not allocate the counts tensor (" + error + ")");
    const dl::Tensor& made = managed->dl_tensor;
    int64_t* base = reinterpret_cast<int64_t*>(static_cast<char*>(made.data) + made.byte_offset);
    const int64_t col = made.strides != nullptr ? made.strides[made.ndim - 1] : 1;
    const int64_t row = made.strides != nullptr && made.ndim == 2 ? made.strides[0] : 2;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < 2; ++j) base[i * row + j * col] = values[size_t(2 * i + j)];
    void* tensor = nullptr;
    if (api_->managed_tensor_to_py_object_no_sync(managed, &tensor) != 0) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(static_cast<PyObject*>(tensor));
  }

  py::type type_;
  py::object capsule_;  // keeps the table's owner alive
  const dl::ExchangeApi* api_;
  std::unordered_map<std::string, Entry> plans_;
};

// count() as a METH_FASTCALL builtin bound to one cache: pybind11's dispatch costs about
// 0.25 us a call, a tenth of a small batch's whole call; this costs about 0.05 us. Its
// self is a capsule holding the cache's pointer and a reference to its Python object.
constexpr const char* kCapsuleName = "fusedmetrics.TorchAccuracyCache";

PyObject* fast_count(PyObject* capsule, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "count_fast(y, t, ignore_label, k, out) takes 5 positional arguments");
    return nullptr;
  }
  auto* cache = static_cast<TorchAccuracyCache*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (cache == nullptr) return nullptr;
  const long long k = PyLong_AsLongLong(args[3]);
  if (k == -1 && PyErr_Occurred()) return nullptr;
  try {
    return cache->count(args[0], args[1], args[2], k, args[4]).release().ptr();
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const std::out_of_range& e) {
    PyErr_SetString(PyExc_IndexError, e.what());
  } catch (const std::invalid_argument& e) {
    PyErr_SetString(PyExc_ValueError, e.what());
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  }
  return nullptr;
}

PyMethodDef fast_count_def = {"count_fast", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_count)),
                              METH_FASTCALL, "count(y, t, ignore_label, k, out) of the cache it was taken from."};

void release_cache_reference(PyObject* capsule) {
  Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(capsule)));
}

py::object count_fast_of(const py::object& self) {
  auto* cache = &self.cast<TorchAccuracyCache&>();
  py::object capsule = py::reinterpret_steal<py::object>(
      PyCapsule_New(cache, kCapsuleName, &release_cache_reference));
  if (!capsule) throw py::error_already_set();
  if (PyCapsule_SetContext(capsule.ptr(), self.inc_ref().ptr()) != 0) {
    self.dec_ref();
    throw py::error_already_set();
  }
  py::object fn = py::reinterpret_steal<py::object>(PyCFunction_New(&fast_count_def, capsule.ptr()));
  if (!fn) throw py::error_already_set();
  return fn;
}

}  // namespace

void bind_torch_accuracy_cache(py::module_& m) {
  py::class_<TorchAccuracyCache>(m, "TorchAccuracyCache",
                                 "accuracy_counts on torch CPU tensors through the DLPack C exchange API; "
                                 "plans cached by layout (see fusedmetrics/_accuracy.py).")
      .def(py::init<const py::type&, const py::object&>(), py::arg("tensor_type"), py::arg("api_capsule"))
      .def("count", &TorchAccuracyCache::count, py::arg("y"), py::arg("t"), py::arg("ignore_label"), py::arg("k"),
           py::arg("out"))
      .def_property_readonly("count_fast", &count_fast_of,
                             "count as a builtin taking (y, t, ignore_label, k, out) positionally, "
                             "without pybind11's dispatch (the hot path of small batches)")
      .def("topk", &TorchAccuracyCache::topk, py::arg("y"), py::arg("t"), py::arg("ignore_label"), py::arg("ks"),
           py::arg("out"))
      .def("remember", &TorchAccuracyCache::remember, py::arg("y"), py::arg("t"), py::arg("ignore_label"),
           py::arg("k"), py::arg("plan"))
      .def("remember_topk", &TorchAccuracyCache::remember_topk, py::arg("y"), py::arg("t"),
           py::arg("ignore_label"), py::arg("kmax"), py::arg("plan"))
      .def("__len__", &TorchAccuracyCache::size)
      .def("clear", &TorchAccuracyCache::clear);
}
