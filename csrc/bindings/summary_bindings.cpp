// fusedmetrics._core.DictSummaryState: the host core of Summary / DictSummary.
//
// add(dict) is one call: it walks the dict with PyDict_Next and reads Python and
// NumPy scalars straight from their objects (no Python object is created per
// item on the fast paths). Chainer's acceptance rules (chainer/reporter.py,
// DictSummary.add) are applied item by item; every item is validated before any
// state changes, so a failing add() loses nothing. Device values (objects with
// __cuda_array_interface__) are not touched here: add() hands them back to
// Python, which folds them in with one kernel launch and then commits.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/summary_table.h"
#include "semantics/hd.h"

namespace py = pybind11;

namespace {

// ------------------------------------------------------------------ scalar reading

enum class Raw : std::uint8_t { F16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Bool };

bool raw_is_integer(Raw r) { return r != Raw::F16 && r != Raw::F32 && r != Raw::F64; }

template <typename T>
T load(const void* p, bool swap) {
  unsigned char bytes[sizeof(T)];
  std::memcpy(bytes, p, sizeof(T));
  if (swap) {
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(bytes[i], bytes[sizeof(T) - 1 - i]);
  }
  T v;
  std::memcpy(&v, bytes, sizeof(T));
  return v;
}

double read_raw(const void* p, Raw r, bool swap) {
  switch (r) {
    case Raw::F16: return fm::half_to_float(load<std::uint16_t>(p, swap));
    case Raw::F32: return load<float>(p, swap);
    case Raw::F64: return load<double>(p, swap);
    case Raw::I8: return load<std::int8_t>(p, false);
    case Raw::I16: return load<std::int16_t>(p, swap);
    case Raw::I32: return load<std::int32_t>(p, swap);
    case Raw::I64: return static_cast<double>(load<std::int64_t>(p, swap));
    case Raw::U8: return load<std::uint8_t>(p, false);
    case Raw::U16: return load<std::uint16_t>(p, swap);
    case Raw::U32: return load<std::uint32_t>(p, swap);
    case Raw::U64: return static_cast<double>(load<std::uint64_t>(p, swap));
    case Raw::Bool: return load<std::uint8_t>(p, false) != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

// Maps a buffer-protocol format ("f", "<d", "=e", "?", "q", ...) to a Raw code.
// Returns false for formats we do not read directly.
bool raw_from_format(const char* fmt, Py_ssize_t itemsize, Raw* out, bool* swap) {
  if (fmt == nullptr) fmt = "B";
  const bool little_host = [] {
    const std::uint16_t one = 1;
    unsigned char b;
    std::memcpy(&b, &one, 1);
    return b == 1;
  }();
  bool little = little_host;
  if (*fmt == '<') { little = true; ++fmt; }
  else if (*fmt == '>' || *fmt == '!') { little = false; ++fmt; }
  else if (*fmt == '@' || *fmt == '=') { ++fmt; }
  if (fmt[0] == '\0' || fmt[1] != '\0') return false;
  *swap = little != little_host;
  const char c = fmt[0];
  switch (c) {
    case '?': *out = Raw::Bool; return itemsize == 1;
    case 'e': *out = Raw::F16; return itemsize == 2;
    case 'f': *out = Raw::F32; return itemsize == 4;
    case 'd': *out = Raw::F64; return itemsize == 8;
    case 'b': case 'h': case 'i': case 'l': case 'q':
    case 'B': case 'H': case 'I': case 'L': case 'Q': {
      const bool is_signed = c >= 'a';
      switch (itemsize) {
        case 1: *out = is_signed ? Raw::I8 : Raw::U8; return true;
        case 2: *out = is_signed ? Raw::I16 : Raw::U16; return true;
        case 4: *out = is_signed ? Raw::I32 : Raw::U32; return true;
        case 8: *out = is_signed ? Raw::I64 : Raw::U64; return true;
        default: return false;
      }
    }
    default: return false;
  }
}

// What a value (or weight) is, in Chainer's terms.
enum class Cat : std::uint8_t {
  Host,       // a real host scalar, read into x
  Device,     // a 0-d device array (__cuda_array_interface__)
  NotScalar,  // Chainer skips it (value) or rejects it (weight)
  Bad,        // Chainer accepts it as a scalar but it is not a real number (str, complex, ...)
};

struct Read {
  Cat cat;
  double x;
  bool integer;
  const char* why;  // for Bad
};

// Types and objects looked up once, when the first state is created.
struct Cache {
  bool ready = false;
  PyTypeObject* ndarray = nullptr;
  PyObject* generic = nullptr;           // numpy.generic
  PyObject* complexfloating = nullptr;   // numpy.complexfloating
  PyObject* number_abc = nullptr;        // numbers.Number
  PyObject* complex_abc = nullptr;       // numbers.Complex
  PyObject* real_abc = nullptr;          // numbers.Real
  PyObject* integral_abc = nullptr;      // numbers.Integral
  PyObject* float64 = nullptr;           // numpy.float64, for results
  struct Fast {
    PyTypeObject* type;
    Raw raw;
  };
  std::vector<Fast> scalars;  // numpy scalar types whose value we read in place
  PyObject* s_array = nullptr;
  PyObject* s_ndim = nullptr;
  PyObject* s_cai = nullptr;
  PyObject* s_dtype = nullptr;
  PyObject* s_kind = nullptr;
  PyObject* s_shape = nullptr;
  PyObject* s_std = nullptr;
};

Cache g;

// NumPy scalar objects store their value right after the object header
// (numpy/arrayscalars.h: struct { PyObject_HEAD; T obval; }), for every NumPy
// version we support. init_cache() verifies this for each type before trusting it.
const void* scalar_payload(PyObject* o) {
  return reinterpret_cast<const char*>(o) + sizeof(PyObject);
}

// A new reference kept for the life of the process.
PyObject* keep(py::object o) { return o.release().ptr(); }

void init_cache() {
  if (g.ready) return;
  py::module_ np = py::module_::import("numpy");
  py::module_ numbers = py::module_::import("numbers");
  g.ndarray = reinterpret_cast<PyTypeObject*>(keep(np.attr("ndarray")));
  g.generic = keep(np.attr("generic"));
  g.complexfloating = keep(np.attr("complexfloating"));
  g.float64 = keep(np.attr("float64"));
  g.number_abc = keep(numbers.attr("Number"));
  g.complex_abc = keep(numbers.attr("Complex"));
  g.real_abc = keep(numbers.attr("Real"));
  g.integral_abc = keep(numbers.attr("Integral"));
  // float32 first: it is what losses usually are.
  const char* names[] = {"single", "half", "double", "bool_", "byte", "ubyte", "short", "ushort",
                         "intc", "uintc", "int_", "uint", "longlong", "ulonglong"};
  for (const char* name : names) {
    if (!py::hasattr(np, name)) continue;
    py::object type = np.attr(name);
    py::object dtype = np.attr("dtype")(type);
    const std::string kind = py::str(dtype.attr("kind"));
    const Py_ssize_t size = dtype.attr("itemsize").cast<Py_ssize_t>();
    Raw raw;
    bool ok = true;
    if (kind == "b" && size == 1) raw = Raw::Bool;
    else if (kind == "f" && size == 2) raw = Raw::F16;
    else if (kind == "f" && size == 4) raw = Raw::F32;
    else if (kind == "f" && size == 8) raw = Raw::F64;
    else if ((kind == "i" || kind == "u") && (size == 1 || size == 2 || size == 4 || size == 8)) {
      const bool s = kind == "i";
      raw = size == 1 ? (s ? Raw::I8 : Raw::U8) : size == 2 ? (s ? Raw::I16 : Raw::U16)
          : size == 4 ? (s ? Raw::I32 : Raw::U32) : (s ? Raw::I64 : Raw::U64);
    } else {
      ok = false;
    }
    if (!ok) continue;
    // Verify the in-place layout with two probe values.
    const double probes[2] = {raw == Raw::Bool ? 1.0 : 3.0, raw == Raw::Bool ? 0.0 : 5.0};
    for (double p : probes) {
      py::object v = type(py::int_(static_cast<long>(p)));
      if (Py_TYPE(v.ptr()) != reinterpret_cast<PyTypeObject*>(type.ptr()) ||
          read_raw(scalar_payload(v.ptr()), raw, false) != p) {
        ok = false;
      }
    }
    if (ok) {
      PyTypeObject* t = reinterpret_cast<PyTypeObject*>(type.ptr());
      bool seen = false;
      for (const auto& f : g.scalars) seen = seen || f.type == t;
      if (!seen) g.scalars.push_back({reinterpret_cast<PyTypeObject*>(type.release().ptr()), raw});
    }
  }
  g.s_array = PyUnicode_InternFromString("array");
  g.s_ndim = PyUnicode_InternFromString("ndim");
  g.s_cai = PyUnicode_InternFromString("__cuda_array_interface__");
  g.s_dtype = PyUnicode_InternFromString("dtype");
  g.s_kind = PyUnicode_InternFromString("kind");
  g.s_shape = PyUnicode_InternFromString("shape");
  g.s_std = PyUnicode_InternFromString(".std");
  g.ready = true;
}

// Is `o`'s class chainer.Variable or a subclass (Parameter)? Detected by the
// class name in the MRO, so Chainer is never imported. The last few classes
// found are remembered, so the MRO is walked once per class.
PyTypeObject* g_variable_types[4] = {nullptr, nullptr, nullptr, nullptr};

bool is_variable_type(PyTypeObject* t) {
  for (PyTypeObject* known : g_variable_types) {
    if (known == t) return true;
  }
  PyObject* mro = t->tp_mro;
  if (mro == nullptr || !PyTuple_Check(mro)) return false;
  const Py_ssize_t n = PyTuple_GET_SIZE(mro);
  for (Py_ssize_t i = 0; i < n; ++i) {
    const char* name = reinterpret_cast<PyTypeObject*>(PyTuple_GET_ITEM(mro, i))->tp_name;
    const char* dot = std::strrchr(name, '.');
    if (std::strcmp(dot ? dot + 1 : name, "Variable") == 0) {
      // Keep a reference: the cache must never point at a freed class.
      Py_INCREF(t);
      Py_XDECREF(g_variable_types[3]);
      for (int j = 3; j > 0; --j) g_variable_types[j] = g_variable_types[j - 1];
      g_variable_types[0] = t;
      return true;
    }
  }
  return false;
}

// A Variable (a Variable-named class with an `array` attribute) becomes a new
// reference to its array; anything else a new reference to itself. Null with an
// exception set on failure.
PyObject* unwrap_variable(PyObject* o) {
  PyTypeObject* t = Py_TYPE(o);
  if (PyFloat_Check(o) || PyLong_Check(o) || t == g.ndarray || !is_variable_type(t)) {
    Py_INCREF(o);
    return o;
  }
  PyObject* array = PyObject_GetAttr(o, g.s_array);
  if (array == nullptr && PyErr_ExceptionMatches(PyExc_AttributeError)) {
    PyErr_Clear();  // named Variable but not Chainer's: an ordinary object
    Py_INCREF(o);
    return o;
  }
  return array;
}

// `getattr(o, 'ndim', -1) == 0`, without raising (-1 when absent or not an int).
long ndim_of(PyObject* o) {
  PyObject* nd = PyObject_GetAttr(o, g.s_ndim);
  if (nd == nullptr) {
    PyErr_Clear();
    return -1;
  }
  long v = PyLong_Check(nd) ? PyLong_AsLong(nd) : -1;
  if (v == -1 && PyErr_Occurred()) PyErr_Clear();
  Py_DECREF(nd);
  return v;
}

// float(o) for the slow paths. Sets r.cat = Bad when it cannot be converted.
void read_by_float(PyObject* o, Read& r) {
  PyObject* f = PyNumber_Float(o);
  if (f == nullptr) {
    PyErr_Clear();
    r.cat = Cat::Bad;
    r.why = "it cannot be converted to float";
    return;
  }
  r.cat = Cat::Host;
  r.x = PyFloat_AS_DOUBLE(f);
  Py_DECREF(f);
  // Integer-ness for Chainer's `_n`: an integral number or an integer/bool dtype.
  int integral = PyObject_IsInstance(o, g.integral_abc);
  if (integral < 0) { PyErr_Clear(); integral = 0; }
  if (!integral) {
    PyObject* dt = PyObject_GetAttr(o, g.s_dtype);
    if (dt != nullptr) {
      PyObject* kind = PyObject_GetAttr(dt, g.s_kind);
      if (kind != nullptr && PyUnicode_Check(kind)) {
        const char* k = PyUnicode_AsUTF8(kind);
        integral = k != nullptr && (k[0] == 'i' || k[0] == 'u' || k[0] == 'b') && k[1] == '\0';
      }
      Py_XDECREF(kind);
      Py_DECREF(dt);
    }
    if (PyErr_Occurred()) PyErr_Clear();
  }
  r.integer = integral != 0;
}

// Classifies an (already unwrapped) value or weight as Chainer would and reads
// it when it is a host real scalar. Never leaves a Python exception set.
Read read_scalar(PyObject* o) {
  Read r{Cat::Host, 0.0, false, nullptr};
  // Fast paths: Python float (and numpy.float64, a float subclass), bool, int.
  if (PyFloat_Check(o)) {
    r.x = PyFloat_AS_DOUBLE(o);
    return r;
  }
  if (PyLong_Check(o)) {
    r.integer = true;
    r.x = PyLong_AsDouble(o);
    if (r.x == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      r.cat = Cat::Bad;
      r.why = "the integer is too large for float64";
    }
    return r;
  }
  PyTypeObject* t = Py_TYPE(o);
  for (const auto& f : g.scalars) {
    if (f.type == t) {
      r.x = read_raw(scalar_payload(o), f.raw, false);
      r.integer = raw_is_integer(f.raw);
      return r;
    }
  }
  // Strings and bytes pass numpy.isscalar (Chainer then fails on `+=`).
  if (PyUnicode_Check(o) || PyBytes_Check(o)) {
    r.cat = Cat::Bad;
    r.why = "strings and bytes are not numbers";
    return r;
  }
  if (PyComplex_Check(o)) {
    r.cat = Cat::Bad;
    r.why = "complex values are not supported";
    return r;
  }
  if (PyObject_TypeCheck(o, g.ndarray)) {
    Py_buffer view;
    if (PyObject_GetBuffer(o, &view, PyBUF_FORMAT | PyBUF_STRIDES) == 0) {
      const int nd = view.ndim;
      Raw raw;
      bool swap = false;
      const bool known = nd == 0 && raw_from_format(view.format, view.itemsize, &raw, &swap);
      const bool complex_fmt = view.format != nullptr && std::strchr(view.format, 'Z') != nullptr;
      const bool text_fmt = view.format != nullptr &&
                            (std::strchr(view.format, 's') != nullptr || std::strchr(view.format, 'w') != nullptr);
      if (known) {
        r.x = read_raw(view.buf, raw, swap);
        r.integer = raw_is_integer(raw);
      }
      PyBuffer_Release(&view);
      if (nd != 0) {
        r.cat = Cat::NotScalar;
        return r;
      }
      if (known) return r;
      if (complex_fmt) {
        r.cat = Cat::Bad;
        r.why = "complex values are not supported";
        return r;
      }
      if (text_fmt) {
        r.cat = Cat::Bad;
        r.why = "strings and bytes are not numbers";
        return r;
      }
    } else {
      PyErr_Clear();  // e.g. datetime arrays: no buffer; decide by ndim below
    }
    if (ndim_of(o) != 0) {
      r.cat = Cat::NotScalar;
      return r;
    }
    read_by_float(o, r);  // long double, object arrays, ...
    return r;
  }
  int is_generic = PyObject_IsInstance(o, g.generic);
  if (is_generic < 0) { PyErr_Clear(); is_generic = 0; }
  if (is_generic) {  // numpy scalars without a fast path: long double, complex64, datetime64, ...
    int is_complex = PyObject_IsInstance(o, g.complexfloating);
    if (is_complex < 0) { PyErr_Clear(); is_complex = 0; }
    if (is_complex) {
      r.cat = Cat::Bad;
      r.why = "complex values are not supported";
      return r;
    }
    read_by_float(o, r);
    return r;
  }
  // Device arrays: accepted only when 0-d, like every other array.
  // Look on the type first: evaluating CuPy's property builds a dict.
  if (PyObject_HasAttr(reinterpret_cast<PyObject*>(Py_TYPE(o)), g.s_cai) || PyObject_HasAttr(o, g.s_cai)) {
    long nd = ndim_of(o);
    if (nd < 0) {  // a bare __cuda_array_interface__ object: use its shape
      PyObject* cai = PyObject_GetAttr(o, g.s_cai);
      if (cai != nullptr && PyDict_Check(cai)) {
        PyObject* shape = PyDict_GetItemWithError(cai, g.s_shape);
        if (shape != nullptr && PyTuple_Check(shape)) nd = static_cast<long>(PyTuple_GET_SIZE(shape));
      }
      Py_XDECREF(cai);
      if (PyErr_Occurred()) PyErr_Clear();
    }
    r.cat = nd == 0 ? Cat::Device : Cat::NotScalar;
    return r;
  }
  if (ndim_of(o) == 0) {  // other 0-d arrays (ChainerX, torch, ...)
    read_by_float(o, r);
    return r;
  }
  int is_number = PyObject_IsInstance(o, g.number_abc);  // Fraction, Decimal, ...
  if (is_number < 0) { PyErr_Clear(); is_number = 0; }
  if (is_number) {
    int is_real = PyObject_IsInstance(o, g.real_abc);
    if (is_real < 0) { PyErr_Clear(); is_real = 0; }
    if (!is_real) {
      r.cat = Cat::Bad;
      r.why = "complex values are not supported";
      return r;
    }
    read_by_float(o, r);
    return r;
  }
  // memoryview is in numpy.ScalarType, so Chainer accepts it and then fails.
  if (PyMemoryView_Check(o)) {
    r.cat = Cat::Bad;
    r.why = "memoryview is not a number";
    return r;
  }
  r.cat = Cat::NotScalar;
  return r;
}

// Whether a device weight's dtype is integer or bool (Chainer's integer `_n`).
bool device_dtype_is_integer(PyObject* o) {
  bool integral = false;
  PyObject* dt = PyObject_GetAttr(o, g.s_dtype);
  if (dt != nullptr) {
    PyObject* kind = PyObject_GetAttr(dt, g.s_kind);
    if (kind != nullptr && PyUnicode_Check(kind)) {
      const char* k = PyUnicode_AsUTF8(kind);
      integral = k != nullptr && (k[0] == 'i' || k[0] == 'u' || k[0] == 'b') && k[1] == '\0';
    }
    Py_XDECREF(kind);
    Py_DECREF(dt);
  }
  if (PyErr_Occurred()) PyErr_Clear();
  return integral;
}

[[noreturn]] void throw_bad(PyObject* exc_type, const char* fmt, PyObject* key, const char* a,
                            const char* b = "") {
  PyErr_Format(exc_type, fmt, key, a, b);
  throw py::error_already_set();
}

// ------------------------------------------------------------------ the state

class DictSummaryState {
 public:
  DictSummaryState() {
    init_cache();
    index_ = py::dict();
    keys_ = py::list();
  }

  std::size_t size() const { return table_.size(); }

  // Parses and validates the whole dict; commits at once when every value is on
  // the host, else keeps the parsed batch pending and returns
  // (slots, values, weights) for the device values.
  py::object add(py::handle d) {
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

  // Summary.add(value, weight): one item under this state's only key. A value
  // that is not a scalar raises instead of being skipped.
  py::object add_item(py::handle key, py::handle value, py::handle weight) {
    discard_pending();
    parse_item(key.ptr(), value.ptr(), weight.ptr(), true);
    return finish();
  }

  void commit_pending() {
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

  void discard_pending() {
    new_keys_.clear();
    updates_.clear();
    device_items_.clear();
    device_values_.clear();
    device_weights_.clear();
  }

  py::list names() const { return py::reinterpret_steal<py::list>(PyList_GetSlice(keys_.ptr(), 0, PY_SSIZE_T_MAX)); }

  py::array_t<double> moments() const {
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

  // Host moments with the device rows (device_rows[slot] for every device slot)
  // Chan-merged in. Used for state_dict / serialize / merge.
  py::array_t<double> merged_moments(py::array_t<double, py::array::c_style | py::array::forcecast> device_rows) const {
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

  py::array_t<bool> integer_weights() const {
    py::array_t<bool> out(static_cast<py::ssize_t>(size()));
    bool* p = out.mutable_data();
    for (std::size_t i = 0; i < size(); ++i) p[i] = table_.integer_weights(i);
    return out;
  }

  py::list device_slots() const {
    py::list out;
    for (std::size_t i = 0; i < size(); ++i) {
      if (device_[i]) out.append(py::int_(i));
    }
    return out;
  }

  bool has_device() const {
    for (auto f : device_) {
      if (f) return true;
    }
    return false;
  }

  // {key: numpy.float64 mean} in first-seen order (host parts only).
  py::dict compute_mean() const {
    py::dict out;
    for (std::size_t i = 0; i < size(); ++i) {
      const fm::Moments& m = table_.row(i);
      PyObject* key = PyList_GET_ITEM(keys_.ptr(), static_cast<Py_ssize_t>(i));
      py::object v = as_float64(m.weight > 0 ? m.mean : std::nan(""));
      if (PyDict_SetItem(out.ptr(), key, v.ptr()) != 0) throw py::error_already_set();
    }
    return out;
  }

  // {key: mean, key + '.std': population std} in first-seen order (host parts only).
  py::dict make_statistics() const {
    py::dict out;
    for (std::size_t i = 0; i < size(); ++i) {
      const fm::Moments& m = table_.row(i);
      PyObject* key = PyList_GET_ITEM(keys_.ptr(), static_cast<Py_ssize_t>(i));
      py::object mean = as_float64(m.weight > 0 ? m.mean : std::nan(""));
      py::object std = as_float64(fm::summary_std(m));
      py::object std_key = py::reinterpret_steal<py::object>(PyNumber_Add(key, g.s_std));
      if (!std_key || PyDict_SetItem(out.ptr(), key, mean.ptr()) != 0 ||
          PyDict_SetItem(out.ptr(), std_key.ptr(), std.ptr()) != 0) {
        throw py::error_already_set();
      }
    }
    return out;
  }

  // (mean, std) of one slot's host part as numpy.float64.
  py::tuple statistics_of(std::size_t slot) const {
    if (slot >= size()) throw py::index_error("slot out of range");
    const fm::Moments& m = table_.row(slot);
    return py::make_tuple(as_float64(m.weight > 0 ? m.mean : std::nan("")), as_float64(fm::summary_std(m)));
  }

  // Chan-merges rows into the host part (merge=true) or replaces the whole state
  // (merge=false). Everything is validated first.
  void combine(py::handle names, py::array_t<double, py::array::c_style | py::array::forcecast> moments,
               py::array_t<bool, py::array::c_style | py::array::forcecast> integer, bool merge) {
    py::list name_list = py::reinterpret_steal<py::list>(PySequence_List(names.ptr()));
    if (!name_list) throw py::error_already_set();
    const Py_ssize_t k = PyList_GET_SIZE(name_list.ptr());
    if (moments.ndim() != 2 || moments.shape(1) != 3 || moments.shape(0) != k) {
      std::string shape = "(";
      for (py::ssize_t i = 0; i < moments.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(moments.shape(i));
      shape += moments.ndim() == 1 ? ",)" : ")";
      throw py::value_error("moments must have shape (" + std::to_string(k) + ", 3) to match " +
                            std::to_string(k) + " names; got " + shape);
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
    if (!merge) {
      table_.clear();
      device_.clear();
      index_ = py::dict();
      keys_ = py::list();
    }
    for (Py_ssize_t i = 0; i < k; ++i) {
      PyObject* name = PyList_GET_ITEM(name_list.ptr(), i);
      std::size_t slot = slot_or_create(name);
      const fm::Moments row{m[3 * i], m[3 * i + 1], m[3 * i + 2]};
      if (merge) table_.merge_row(slot, row, iw[i]);
      else table_.set_row(slot, row, iw[i]);
    }
  }

  void clear() {
    discard_pending();
    table_.clear();
    device_.clear();
    index_ = py::dict();
    keys_ = py::list();
  }

 private:
  struct DeviceItem {
    std::size_t slot;
    bool integer_weight;
  };

  static py::object as_float64(double v) {
    py::object f = py::reinterpret_steal<py::object>(PyFloat_FromDouble(v));
    if (!f) throw py::error_already_set();
    py::object r = py::reinterpret_steal<py::object>(PyObject_CallOneArg(g.float64, f.ptr()));
    if (!r) throw py::error_already_set();
    return r;
  }

  std::size_t slot_or_create(PyObject* key) {
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
  std::size_t pending_slot(PyObject* key) {
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
  void parse_item(PyObject* key, PyObject* value_in, PyObject* weight_in, bool single) {
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
    Read w{Cat::Host, 1.0, true, nullptr};
    if (wraw != nullptr) {
      weight = py::reinterpret_steal<py::object>(unwrap_variable(wraw));
      if (!weight) {
        discard_pending();
        throw py::error_already_set();
      }
      w = read_scalar(weight.ptr());
      if (w.cat == Cat::NotScalar) {
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
    Read v = read_scalar(value.ptr());
    if (v.cat == Cat::NotScalar) {
      if (!single) return;  // Chainer skips it silently, creating no entry
      discard_pending();
      PyErr_Format(PyExc_ValueError,
                   "Summary.add: value must be a scalar or a 0-d array; got %s (not a scalar)",
                   Py_TYPE(value.ptr())->tp_name);
      throw py::error_already_set();
    }
    if (v.cat == Cat::Bad) {
      discard_pending();
      throw_bad(PyExc_TypeError, "the value given for %R has type %s: %s", key, Py_TYPE(value.ptr())->tp_name,
                v.why);
    }
    if (w.cat == Cat::Bad) {
      discard_pending();
      throw_bad(PyExc_TypeError, "the weight given for %R has type %s: %s", key,
                Py_TYPE(weight.ptr())->tp_name, w.why);
    }
    if (w.cat == Cat::Host) {
      if (!(w.x >= 0) || std::isinf(w.x)) {
        discard_pending();
        PyObject* wf = PyFloat_FromDouble(w.x);
        PyErr_Format(PyExc_ValueError, "the weight given for %R must be finite and >= 0; got %R", key, wf);
        Py_XDECREF(wf);
        throw py::error_already_set();
      }
      if (w.x == 0) return;  // zero weight: nothing to add, and no entry
    }
    const std::size_t slot = pending_slot(key);
    if (v.cat == Cat::Host && w.cat == Cat::Host) {
      updates_.push_back({slot, v.x, w.x, w.integer});
      return;
    }
    // A device value or a device weight: Python folds it in on the GPU.
    const bool integer_weight = w.cat == Cat::Device ? device_dtype_is_integer(weight.ptr()) : w.integer;
    device_items_.push_back({slot, integer_weight});
    device_values_.push_back(value);
    device_weights_.push_back(w.cat == Cat::Device ? weight
                                                   : py::reinterpret_steal<py::object>(PyFloat_FromDouble(w.x)));
  }

  py::object finish() {
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

  fm::SummaryTable table_;
  std::vector<std::uint8_t> device_;  // slot has a device part
  py::dict index_;                    // key -> slot
  py::list keys_;                     // slot -> key (first-seen order)
  // The batch being added (validated, not yet committed).
  std::vector<py::object> new_keys_;
  std::vector<fm::SummaryUpdate> updates_;
  std::vector<DeviceItem> device_items_;
  std::vector<py::object> device_values_;
  std::vector<py::object> device_weights_;
};

}  // namespace

void bind_summary(py::module_& m) {
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
      .def("clear", &DictSummaryState::clear);
}
