// DictSummaryState: parsing (Chainer's rules), the pending batch, and the
// conversions between the float64 table and Python (see dict_summary_state.h).
#include "dict_summary_state.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "py_scalar.h"

namespace fmpy {
namespace {

// Results are numpy.float64, like Chainer's means of NumPy values.
py::object as_float64(double v) {
  // Looked up once and kept for the life of the process.
  static PyObject* float64_type = py::object(py::module_::import("numpy").attr("float64")).release().ptr();
  py::object f = py::reinterpret_steal<py::object>(PyFloat_FromDouble(v));
  if (!f) throw py::error_already_set();
  py::object r = py::reinterpret_steal<py::object>(PyObject_CallOneArg(float64_type, f.ptr()));
  if (!r) throw py::error_already_set();
  return r;
}

// A host mean: NaN for a slot that holds only a device part (W == 0 here).
double host_mean(const fm::Moments& m) { return m.weight > 0 ? m.mean : std::nan(""); }

void set_item(PyObject* dict, PyObject* key, const py::object& value) {
  if (PyDict_SetItem(dict, key, value.ptr()) != 0) throw py::error_already_set();
}

// A dict built row by row from copies of the rows and keys (compute_mean, make_statistics).
template <class Put>
py::dict dict_of_rows(const std::vector<fm::Moments>& rows, const py::list& keys, Put put) {
  py::dict out;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    put(out.ptr(), PyList_GET_ITEM(keys.ptr(), static_cast<Py_ssize_t>(i)), rows[i]);
  }
  return out;
}

PyObject* std_suffix() {
  static PyObject* suffix = PyUnicode_InternFromString(".std");
  return suffix;
}

[[noreturn]] void throw_bad(PyObject* exc_type, const char* fmt, PyObject* key, const char* a,
                            const char* b = "") {
  PyErr_Format(exc_type, fmt, key, a, b);
  throw py::error_already_set();
}

[[noreturn]] void throw_reentrant(const char* what) {
  PyErr_Format(PyExc_RuntimeError,
               "%s: re-entrant call on a summary that this thread is already adding to (from a key's "
               "__hash__/__eq__ or a value's __float__/array conversion); nothing was changed",
               what);
  throw py::error_already_set();
}

// A total weight past float64's range would give inf and a wrong mean (x * w / inf).
[[noreturn]] void throw_weight_overflow(PyObject* key, double have, double add) {
  py::object a = py::reinterpret_steal<py::object>(PyFloat_FromDouble(have));
  py::object b = py::reinterpret_steal<py::object>(PyFloat_FromDouble(add));
  PyErr_Format(PyExc_OverflowError, "the total weight of %R would overflow float64 (%R + %R); nothing was changed",
               key, a.ptr(), b.ptr());
  throw py::error_already_set();
}

}  // namespace

// Holds the summary's guard for one changing call; keep() leaves it held for the
// device batch that commit_pending / discard_pending then end.
class DictSummaryState::Exclusive {
 public:
  Exclusive(DictSummaryState& s, const char* what) : s_(s) { s_.enter_exclusive(what); }
  ~Exclusive() {
    if (!kept_) s_.leave_exclusive();
  }
  void keep() { kept_ = true; }

 private:
  DictSummaryState& s_;
  bool kept_ = false;
};

void DictSummaryState::enter_exclusive(const char* what) {
  const std::thread::id me = std::this_thread::get_id();
  bool reentrant;
  {
    // guard_mutex_ is only ever held for a few instructions, never while waiting
    // for the GIL, so taking it with the GIL held cannot deadlock.
    std::lock_guard<std::mutex> lock(guard_mutex_);
    if (owner_ == std::thread::id()) {
      owner_ = me;
      return;
    }
    reentrant = owner_ == me;
  }
  if (reentrant) throw_reentrant(what);
  // Another thread is inside (its __float__ let the GIL go): wait without the GIL,
  // which that thread needs to finish.
  py::gil_scoped_release nogil;
  std::unique_lock<std::mutex> lock(guard_mutex_);
  guard_free_.wait(lock, [this] { return owner_ == std::thread::id(); });
  owner_ = me;
}

void DictSummaryState::leave_exclusive() {
  {
    std::lock_guard<std::mutex> lock(guard_mutex_);
    owner_ = std::thread::id();
  }
  guard_free_.notify_all();
}

// Returns with the GIL held and no other thread inside a changing call; the caller
// must then read without running Python code (which could let one in).
void DictSummaryState::wait_readable() const {
  const std::thread::id me = std::this_thread::get_id();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(guard_mutex_);
      if (owner_ == std::thread::id() || owner_ == me) return;
    }
    py::gil_scoped_release nogil;
    std::unique_lock<std::mutex> lock(guard_mutex_);
    guard_free_.wait(lock, [this] { return owner_ == std::thread::id(); });
    // Loop: another writer may get in before this thread has the GIL back.
  }
}

std::size_t DictSummaryState::size() const {
  wait_readable();
  return table_.size();
}

DictSummaryState::DictSummaryState() {
  init_scalar_reader();
  index_ = py::dict();
  keys_ = py::list();
}

py::object DictSummaryState::add(py::handle d) {
  Exclusive guard(*this, "DictSummary.add");
  drop_pending();
  try {
    PyObject* dict = d.ptr();
    py::object owned;
    if (!PyDict_Check(dict)) {  // a Mapping: Chainer iterates d.items()
      owned = py::reinterpret_steal<py::object>(PyDict_New());
      if (!owned) throw py::error_already_set();
      py::object items = py::reinterpret_steal<py::object>(PyObject_CallMethod(dict, "items", nullptr));
      if (!items || PyDict_MergeFromSeq2(owned.ptr(), items.ptr(), 1) != 0) throw py::error_already_set();
      dict = owned.ptr();
    }
    const py::object hold_dict = py::reinterpret_borrow<py::object>(dict);
    // Python code run while reading (a __float__, a __hash__) may change the dict,
    // and PyDict_Next would then visit a re-inserted key twice. Detect it as
    // Python's dict iterator does, with its messages (Chainer iterates with it).
    const Py_ssize_t size = PyDict_GET_SIZE(dict);
    Py_ssize_t pos = 0, visited = 0;
    PyObject* key;
    PyObject* value;
    for (;;) {
      if (PyDict_GET_SIZE(dict) != size) {
        PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
        throw py::error_already_set();
      }
      if (!PyDict_Next(dict, &pos, &key, &value)) break;
      if (++visited > size) {
        PyErr_SetString(PyExc_RuntimeError, "dictionary keys changed during iteration");
        throw py::error_already_set();
      }
      parse_item(key, value, nullptr, false);
    }
    py::object out = finish();
    if (!out.is_none()) guard.keep();  // the device batch: held until commit/discard
    return out;
  } catch (...) {
    drop_pending();
    throw;
  }
}

py::object DictSummaryState::add_item(py::handle key, py::handle value, py::handle weight) {
  Exclusive guard(*this, "Summary.add");
  drop_pending();
  try {
    parse_item(key.ptr(), value.ptr(), weight.ptr(), true);
    py::object out = finish();
    if (!out.is_none()) guard.keep();
    return out;
  } catch (...) {
    drop_pending();
    throw;
  }
}

void DictSummaryState::commit_pending() {
  {
    std::lock_guard<std::mutex> lock(guard_mutex_);
    if (owner_ != std::this_thread::get_id()) {
      throw std::runtime_error("commit_pending: this thread has no pending device batch");
    }
  }
  try {
    commit();
  } catch (...) {
    leave_exclusive();
    throw;
  }
  leave_exclusive();
}

void DictSummaryState::discard_pending() {
  bool mine;
  {
    std::lock_guard<std::mutex> lock(guard_mutex_);
    mine = owner_ == std::this_thread::get_id();
  }
  if (!mine) return;  // nothing of this thread's is pending
  drop_pending();
  leave_exclusive();
}

void DictSummaryState::commit() {
  const std::size_t old_size = table_.size();
  const Py_ssize_t old_len = PyList_GET_SIZE(keys_.ptr());
  for (std::size_t i = 0; i < new_keys_.size(); ++i) {
    PyObject* k = new_keys_[i].ptr();
    py::object slot = py::reinterpret_steal<py::object>(PyLong_FromSize_t(old_size + i));
    if (!slot || PyDict_SetItem(index_.ptr(), k, slot.ptr()) != 0 || PyList_Append(keys_.ptr(), k) != 0) {
      // Roll back the keys added so far (out of memory): the state is unchanged.
      PyObject *type, *val, *tb;
      PyErr_Fetch(&type, &val, &tb);
      for (std::size_t j = 0; j <= i; ++j) {
        if (PyDict_DelItem(index_.ptr(), new_keys_[j].ptr()) != 0) PyErr_Clear();
      }
      PyList_SetSlice(keys_.ptr(), old_len, PY_SSIZE_T_MAX, nullptr);
      PyErr_Restore(type, val, tb);
      drop_pending();
      throw py::error_already_set();
    }
  }
  table_.resize(old_size + new_keys_.size());
  device_.resize(table_.size(), 0);
  table_.apply(updates_.data(), updates_.size());
  for (const auto& dv : device_items_) {
    device_[dv.slot] = 1;
    if (!dv.integer_weight) table_.clear_integer_flag(dv.slot);
  }
  drop_pending();
}

void DictSummaryState::drop_pending() {
  new_keys_.clear();
  updates_.clear();
  device_items_.clear();
  device_values_.clear();
  device_weights_.clear();
}

std::vector<fm::Moments> DictSummaryState::rows_copy() const {
  std::vector<fm::Moments> rows(table_.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = table_.row(i);
  return rows;
}

py::tuple DictSummaryState::snapshot() const {
  wait_readable();
  // No Python code runs between these three reads.
  return py::make_tuple(names(), moments(), integer_weights());
}

py::list DictSummaryState::names() const {
  wait_readable();
  return py::reinterpret_steal<py::list>(PyList_GetSlice(keys_.ptr(), 0, PY_SSIZE_T_MAX));
}

py::array_t<double> DictSummaryState::moments() const {
  wait_readable();
  // One size for the whole copy: allocating `out` runs Python, and a thread that adds
  // keys meanwhile must not make the loop outrun the array.
  const std::size_t n = size();
  py::array_t<double> out({static_cast<py::ssize_t>(n), py::ssize_t(3)});
  double* p = out.mutable_data();
  for (std::size_t i = 0; i < n; ++i) {
    const fm::Moments& m = table_.row(i);
    p[3 * i] = m.weight;
    p[3 * i + 1] = m.mean;
    p[3 * i + 2] = m.m2;
  }
  return out;
}

py::array_t<double> DictSummaryState::merged_moments(
    py::array_t<double, py::array::c_style | py::array::forcecast> device_rows) const {
  wait_readable();
  if (device_rows.ndim() != 2 || device_rows.shape(1) != 3) {
    throw py::value_error("device_rows must have shape (capacity, 3); got ndim " +
                          std::to_string(device_rows.ndim()));
  }
  py::array_t<double> out = moments();
  double* p = out.mutable_data();
  const double* d = device_rows.data();
  for (std::size_t i = 0; i < std::size_t(out.shape(0)); ++i) {
    if (!device_[i]) continue;
    if (static_cast<py::ssize_t>(i) >= device_rows.shape(0)) {
      throw py::value_error("device_rows has " + std::to_string(device_rows.shape(0)) +
                            " rows but slot " + std::to_string(i) + " is on the device");
    }
    const fm::Moments merged = fm::moments_merge(table_.row(i), fm::Moments{d[3 * i], d[3 * i + 1], d[3 * i + 2]});
    p[3 * i] = merged.weight;
    p[3 * i + 1] = merged.mean;
    p[3 * i + 2] = merged.m2;
  }
  return out;
}

py::array_t<bool> DictSummaryState::integer_weights() const {
  wait_readable();
  const std::size_t n = size();  // as in moments()
  py::array_t<bool> out(static_cast<py::ssize_t>(n));
  bool* p = out.mutable_data();
  for (std::size_t i = 0; i < n; ++i) p[i] = table_.integer_weights(i);
  return out;
}

py::list DictSummaryState::device_slots() const {
  wait_readable();
  py::list out;
  for (std::size_t i = 0; i < size(); ++i) {
    if (device_[i]) out.append(py::int_(i));
  }
  return out;
}

bool DictSummaryState::has_device() const {
  wait_readable();
  for (auto f : device_) {
    if (f) return true;
  }
  return false;
}

// compute_mean / make_statistics copy the rows and keys first: building the dict
// hashes the keys, Python code that could let another thread's add() in.
py::dict DictSummaryState::compute_mean() const {
  wait_readable();
  const std::vector<fm::Moments> rows = rows_copy();
  const py::list keys = names();
  return dict_of_rows(rows, keys, [](PyObject* out, PyObject* key, const fm::Moments& m) {
    set_item(out, key, as_float64(host_mean(m)));
  });
}

py::dict DictSummaryState::make_statistics() const {
  wait_readable();
  const std::vector<fm::Moments> rows = rows_copy();
  const py::list keys = names();
  return dict_of_rows(rows, keys, [](PyObject* out, PyObject* key, const fm::Moments& m) {
    py::object mean = as_float64(host_mean(m));
    py::object std = as_float64(fm::summary_std(m));
    py::object std_key = py::reinterpret_steal<py::object>(PyNumber_Add(key, std_suffix()));
    if (!std_key) throw py::error_already_set();
    set_item(out, key, mean);
    set_item(out, std_key.ptr(), std);
  });
}

py::tuple DictSummaryState::statistics_of(std::size_t slot) const {
  wait_readable();
  if (slot >= table_.size()) throw py::index_error("slot out of range");
  const fm::Moments m = table_.row(slot);  // a copy: making the floats runs Python, which may grow the table
  return py::make_tuple(as_float64(host_mean(m)), as_float64(fm::summary_std(m)));
}

void DictSummaryState::combine(py::handle names,
                               py::array_t<double, py::array::c_style | py::array::forcecast> moments,
                               py::array_t<bool, py::array::c_style | py::array::forcecast> integer,
                               bool merge) {
  Exclusive guard(*this, merge ? "DictSummary.merge" : "DictSummary.load_state_dict");
  py::list name_list = py::reinterpret_steal<py::list>(PySequence_List(names.ptr()));
  if (!name_list) throw py::error_already_set();
  const Py_ssize_t k = PyList_GET_SIZE(name_list.ptr());
  if (moments.ndim() != 2 || moments.shape(1) != 3 || moments.shape(0) != k) {
    throw py::value_error("moments must have shape (" + std::to_string(k) + ", 3) to match " +
                          std::to_string(k) + " names; got " + std::string(py::str(moments.attr("shape"))));
  }
  if (integer.ndim() != 1 || integer.shape(0) != k) {
    throw py::value_error("integer_weights must have shape (" + std::to_string(k) + ",) to match the names");
  }
  const double* m = moments.data();
  py::dict seen;
  for (Py_ssize_t i = 0; i < k; ++i) {
    PyObject* name = PyList_GET_ITEM(name_list.ptr(), i);
    const int dup = PyDict_Contains(seen.ptr(), name);
    if (dup < 0) throw py::error_already_set();
    if (dup) {
      PyErr_Format(PyExc_ValueError, "names contains %R more than once", name);
      throw py::error_already_set();
    }
    if (PyDict_SetItem(seen.ptr(), name, Py_None) != 0) throw py::error_already_set();
    // A NaN weight is refused (add refuses NaN weights); a NaN mean or M2 is what NaN values leave.
    if (!(m[3 * i] >= 0) || m[3 * i + 2] < 0) {
      PyErr_Format(PyExc_ValueError, "moments for %R have a negative or NaN weight, or a negative M2", name);
      throw py::error_already_set();
    }
    if (std::isinf(m[3 * i])) {
      PyErr_Format(PyExc_ValueError, "moments for %R have an infinite total weight", name);
      throw py::error_already_set();
    }
    if (merge) {  // the merged total must stay finite: never a silently wrong mean
      PyObject* s = PyDict_GetItemWithError(index_.ptr(), name);
      if (s == nullptr && PyErr_Occurred()) throw py::error_already_set();
      if (s != nullptr) {
        const double have = table_.row(PyLong_AsSize_t(s)).weight;
        if (std::isinf(have + m[3 * i])) throw_weight_overflow(name, have, m[3 * i]);
      }
    }
  }
  const bool* iw = integer.data();
  if (!merge) clear_state();
  for (Py_ssize_t i = 0; i < k; ++i) {
    PyObject* name = PyList_GET_ITEM(name_list.ptr(), i);
    std::size_t slot = slot_or_create(name);
    const fm::Moments row{m[3 * i], m[3 * i + 1], m[3 * i + 2]};
    if (merge) table_.merge_row(slot, row, iw[i]);
    else table_.set_row(slot, row, iw[i]);
  }
}

void DictSummaryState::clear() {
  Exclusive guard(*this, "DictSummary.clear");
  clear_state();
}

void DictSummaryState::clear_state() {
  drop_pending();
  table_.clear();
  device_.clear();
  index_ = py::dict();
  keys_ = py::list();
}

std::size_t DictSummaryState::slot_or_create(PyObject* key) {
  PyObject* s = PyDict_GetItemWithError(index_.ptr(), key);
  if (s != nullptr) return PyLong_AsSize_t(s);
  if (PyErr_Occurred()) throw py::error_already_set();
  const std::size_t slot = table_.size();
  py::object slot_obj = py::reinterpret_steal<py::object>(PyLong_FromSize_t(slot));
  if (!slot_obj || PyDict_SetItem(index_.ptr(), key, slot_obj.ptr()) != 0 ||
      PyList_Append(keys_.ptr(), key) != 0) {
    throw py::error_already_set();
  }
  table_.resize(slot + 1);
  device_.resize(slot + 1, 0);
  return slot;
}


// The slot a key has, or will have once the pending batch is committed.
std::size_t DictSummaryState::pending_slot(PyObject* key) {
  PyObject* s = PyDict_GetItemWithError(index_.ptr(), key);
  if (s != nullptr) return PyLong_AsSize_t(s);
  if (PyErr_Occurred()) throw py::error_already_set();
  for (std::size_t i = 0; i < new_keys_.size(); ++i) {
    if (new_keys_[i].ptr() == key) return table_.size() + i;
  }
  new_keys_.push_back(py::reinterpret_borrow<py::object>(key));
  return table_.size() + new_keys_.size() - 1;
}


// One (key, value) pair of add(), or (value, weight) of Summary.add when
// `weight_in` is given. Throws (state untouched) on invalid input.
void DictSummaryState::parse_item(PyObject* key, PyObject* value_in, PyObject* weight_in, bool single) {
  // Own the key and value: Variable.array / __float__ run Python code that could
  // drop the dict's references.
  const py::object hold_key = py::reinterpret_borrow<py::object>(key);
  const py::object hold_value = py::reinterpret_borrow<py::object>(value_in);
  PyObject* vraw = value_in;
  PyObject* wraw = weight_in;
  if (!single && PyTuple_Check(vraw)) {
    if (PyTuple_GET_SIZE(vraw) < 2) {
      drop_pending();
      throw_bad(PyExc_IndexError, "the tuple given for %R must be (value, weight); got %s%s", key,
                PyTuple_GET_SIZE(vraw) == 0 ? "an empty tuple" : "a 1-tuple");
    }
    wraw = PyTuple_GET_ITEM(vraw, 1);
    vraw = PyTuple_GET_ITEM(vraw, 0);
  }
  // Weight first: Chainer checks it even when the value is then skipped.
  py::object weight;
  ScalarRead w{ScalarKind::Host, 1.0, true, nullptr};
  if (wraw != nullptr) {
    weight = py::reinterpret_steal<py::object>(unwrap_variable(wraw));
    if (!weight) {
      drop_pending();
      throw py::error_already_set();
    }
    w = read_scalar(weight.ptr());
    if (w.kind == ScalarKind::Error) {
      drop_pending();
      throw py::error_already_set();
    }
    if (w.kind == ScalarKind::NotScalar) {
      drop_pending();
      PyErr_Format(PyExc_ValueError, "Given weight to %S was not scalar.", key);
      throw py::error_already_set();
    }
  }
  py::object value = py::reinterpret_steal<py::object>(unwrap_variable(vraw));
  if (!value) {
    drop_pending();
    throw py::error_already_set();
  }
  ScalarRead v = read_scalar(value.ptr());
  if (v.kind == ScalarKind::Error) {
    drop_pending();
    throw py::error_already_set();
  }
  if (v.kind == ScalarKind::NotScalar) {
    if (!single) return;  // Chainer skips it silently, creating no entry
    drop_pending();
    PyErr_Format(PyExc_ValueError,
                 "Summary.add: value must be a scalar or a 0-d array; got %s (not a scalar)",
                 Py_TYPE(value.ptr())->tp_name);
    throw py::error_already_set();
  }
  if (v.kind == ScalarKind::Bad) {
    drop_pending();
    throw_bad(PyExc_TypeError, "the value given for %R has type %s: %s", key, Py_TYPE(value.ptr())->tp_name,
              v.why);
  }
  if (w.kind == ScalarKind::Bad) {
    drop_pending();
    throw_bad(PyExc_TypeError, "the weight given for %R has type %s: %s", key,
              Py_TYPE(weight.ptr())->tp_name, w.why);
  }
  if (w.kind == ScalarKind::Host) {
    if (!(w.value >= 0) || std::isinf(w.value)) {
      drop_pending();
      PyObject* wf = PyFloat_FromDouble(w.value);
      PyErr_Format(PyExc_ValueError, "the weight given for %R must be finite and >= 0; got %R", key, wf);
      Py_XDECREF(wf);
      throw py::error_already_set();
    }
    if (w.value == 0) return;  // zero weight: nothing to add, and no entry
  }
  const std::size_t slot = pending_slot(key);
  if (w.kind == ScalarKind::Host && slot < table_.size() && std::isinf(table_.row(slot).weight + w.value)) {
    drop_pending();
    throw_weight_overflow(key, table_.row(slot).weight, w.value);
  }
  if (v.kind == ScalarKind::Host && w.kind == ScalarKind::Host) {
    updates_.push_back({slot, v.value, w.value, w.integer});
    return;
  }
  // A device value or a device weight: Python folds it in on the GPU.
  const bool integer_weight = w.kind == ScalarKind::Device ? has_integer_dtype(weight.ptr()) : w.integer;
  device_items_.push_back({slot, integer_weight});
  device_values_.push_back(value);
  device_weights_.push_back(w.kind == ScalarKind::Device ? weight
                                                 : py::reinterpret_steal<py::object>(PyFloat_FromDouble(w.value)));
}

py::object DictSummaryState::finish() {
  if (device_items_.empty()) {
    commit();
    return py::none();
  }
  py::list slots, values, weights;
  for (std::size_t i = 0; i < device_items_.size(); ++i) {
    slots.append(py::int_(device_items_[i].slot));
    values.append(device_values_[i]);
    weights.append(device_weights_[i]);
  }
  return py::make_tuple(slots, values, weights);
}

}  // namespace fmpy
