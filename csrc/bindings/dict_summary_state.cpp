// DictSummaryState: parsing (Chainer's rules), the pending batch, and the
// conversions between the float64 table and Python (see dict_summary_state.h).
#include "dict_summary_state.h"

#include <cmath>
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

PyObject* std_suffix() {
  static PyObject* suffix = PyUnicode_InternFromString(".std");
  return suffix;
}

[[noreturn]] void throw_bad(PyObject* exc_type, const char* fmt, PyObject* key, const char* a,
                            const char* b = "") {
  PyErr_Format(exc_type, fmt, key, a, b);
  throw py::error_already_set();
}

}  // namespace

DictSummaryState::DictSummaryState() {
  init_scalar_reader();
  index_ = py::dict();
  keys_ = py::list();
}

py::object DictSummaryState::add(py::handle d) {
  discard_pending();
  PyObject* dict = d.ptr();
  py::object owned;
  if (!PyDict_Check(dict)) {  // a Mapping: Chainer iterates d.items()
    owned = py::reinterpret_steal<py::object>(PyDict_New());
    if (!owned) throw py::error_already_set();
    py::object items = py::reinterpret_steal<py::object>(PyObject_CallMethod(dict, "items", nullptr));
    if (!items || PyDict_MergeFromSeq2(owned.ptr(), items.ptr(), 1) != 0) throw py::error_already_set();
    dict = owned.ptr();
  }
  Py_ssize_t pos = 0;
  PyObject* key;
  PyObject* value;
  while (PyDict_Next(dict, &pos, &key, &value)) parse_item(key, value, nullptr, false);
  return finish();
}

py::object DictSummaryState::add_item(py::handle key, py::handle value, py::handle weight) {
  discard_pending();
  parse_item(key.ptr(), value.ptr(), weight.ptr(), true);
  return finish();
}

void DictSummaryState::commit_pending() {
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
      discard_pending();
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
  discard_pending();
}

void DictSummaryState::discard_pending() {
  new_keys_.clear();
  updates_.clear();
  device_items_.clear();
  device_values_.clear();
  device_weights_.clear();
}

py::list DictSummaryState::names() const {
  return py::reinterpret_steal<py::list>(PyList_GetSlice(keys_.ptr(), 0, PY_SSIZE_T_MAX));
}

py::array_t<double> DictSummaryState::moments() const {
  py::array_t<double> out({static_cast<py::ssize_t>(size()), py::ssize_t(3)});
  double* p = out.mutable_data();
  for (std::size_t i = 0; i < size(); ++i) {
    const fm::Moments& m = table_.row(i);
    p[3 * i] = m.weight;
    p[3 * i + 1] = m.mean;
    p[3 * i + 2] = m.m2;
  }
  return out;
}

py::array_t<double> DictSummaryState::merged_moments(
    py::array_t<double, py::array::c_style | py::array::forcecast> device_rows) const {
  if (device_rows.ndim() != 2 || device_rows.shape(1) != 3) {
    throw py::value_error("device_rows must have shape (capacity, 3); got ndim " +
                          std::to_string(device_rows.ndim()));
  }
  py::array_t<double> out = moments();
  double* p = out.mutable_data();
  const double* d = device_rows.data();
  for (std::size_t i = 0; i < size(); ++i) {
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
  py::array_t<bool> out(static_cast<py::ssize_t>(size()));
  bool* p = out.mutable_data();
  for (std::size_t i = 0; i < size(); ++i) p[i] = table_.integer_weights(i);
  return out;
}

py::list DictSummaryState::device_slots() const {
  py::list out;
  for (std::size_t i = 0; i < size(); ++i) {
    if (device_[i]) out.append(py::int_(i));
  }
  return out;
}

bool DictSummaryState::has_device() const {
  for (auto f : device_) {
    if (f) return true;
  }
  return false;
}

py::dict DictSummaryState::compute_mean() const {
  py::dict out;
  for (std::size_t i = 0; i < size(); ++i) {
    const fm::Moments& m = table_.row(i);
    PyObject* key = PyList_GET_ITEM(keys_.ptr(), static_cast<Py_ssize_t>(i));
    py::object v = as_float64(host_mean(m));
    if (PyDict_SetItem(out.ptr(), key, v.ptr()) != 0) throw py::error_already_set();
  }
  return out;
}

py::dict DictSummaryState::make_statistics() const {
  py::dict out;
  for (std::size_t i = 0; i < size(); ++i) {
    const fm::Moments& m = table_.row(i);
    PyObject* key = PyList_GET_ITEM(keys_.ptr(), static_cast<Py_ssize_t>(i));
    py::object mean = as_float64(host_mean(m));
    py::object std = as_float64(fm::summary_std(m));
    py::object std_key = py::reinterpret_steal<py::object>(PyNumber_Add(key, std_suffix()));
    if (!std_key || PyDict_SetItem(out.ptr(), key, mean.ptr()) != 0 ||
        PyDict_SetItem(out.ptr(), std_key.ptr(), std.ptr()) != 0) {
      throw py::error_already_set();
    }
  }
  return out;
}

py::tuple DictSummaryState::statistics_of(std::size_t slot) const {
  if (slot >= size()) throw py::index_error("slot out of range");
  const fm::Moments& m = table_.row(slot);
  return py::make_tuple(as_float64(host_mean(m)), as_float64(fm::summary_std(m)));
}

void DictSummaryState::combine(py::handle names,
                               py::array_t<double, py::array::c_style | py::array::forcecast> moments,
                               py::array_t<bool, py::array::c_style | py::array::forcecast> integer,
                               bool merge) {
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
    if (m[3 * i] < 0 || m[3 * i + 2] < 0) {
      PyErr_Format(PyExc_ValueError, "moments for %R have a negative weight or M2", name);
      throw py::error_already_set();
    }
  }
  const bool* iw = integer.data();
  if (!merge) clear();
  for (Py_ssize_t i = 0; i < k; ++i) {
    PyObject* name = PyList_GET_ITEM(name_list.ptr(), i);
    std::size_t slot = slot_or_create(name);
    const fm::Moments row{m[3 * i], m[3 * i + 1], m[3 * i + 2]};
    if (merge) table_.merge_row(slot, row, iw[i]);
    else table_.set_row(slot, row, iw[i]);
  }
}

void DictSummaryState::clear() {
  discard_pending();
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
      discard_pending();
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
      discard_pending();
      throw py::error_already_set();
    }
    w = read_scalar(weight.ptr());
    if (w.kind == ScalarKind::NotScalar) {
      discard_pending();
      PyErr_Format(PyExc_ValueError, "Given weight to %S was not scalar.", key);
      throw py::error_already_set();
    }
  }
  py::object value = py::reinterpret_steal<py::object>(unwrap_variable(vraw));
  if (!value) {
    discard_pending();
    throw py::error_already_set();
  }
  ScalarRead v = read_scalar(value.ptr());
  if (v.kind == ScalarKind::NotScalar) {
    if (!single) return;  // Chainer skips it silently, creating no entry
    discard_pending();
    PyErr_Format(PyExc_ValueError,
                 "Summary.add: value must be a scalar or a 0-d array; got %s (not a scalar)",
                 Py_TYPE(value.ptr())->tp_name);
    throw py::error_already_set();
  }
  if (v.kind == ScalarKind::Bad) {
    discard_pending();
    throw_bad(PyExc_TypeError, "the value given for %R has type %s: %s", key, Py_TYPE(value.ptr())->tp_name,
              v.why);
  }
  if (w.kind == ScalarKind::Bad) {
    discard_pending();
    throw_bad(PyExc_TypeError, "the weight given for %R has type %s: %s", key,
              Py_TYPE(weight.ptr())->tp_name, w.why);
  }
  if (w.kind == ScalarKind::Host) {
    if (!(w.value >= 0) || std::isinf(w.value)) {
      discard_pending();
      PyObject* wf = PyFloat_FromDouble(w.value);
      PyErr_Format(PyExc_ValueError, "the weight given for %R must be finite and >= 0; got %R", key, wf);
      Py_XDECREF(wf);
      throw py::error_already_set();
    }
    if (w.value == 0) return;  // zero weight: nothing to add, and no entry
  }
  const std::size_t slot = pending_slot(key);
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
    commit_pending();
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
