// Chainer's scalar test and reading, without creating Python objects on the
// common paths (see py_scalar.h).
#include "py_scalar.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "semantics/dtypes.h"
#include "semantics/scalars.h"

namespace py = pybind11;

namespace fmpy {
namespace {

// The scalar dtypes a host value can have, numbered by the shared scalar codes.
enum class Raw : std::uint8_t {
  F16 = fm::scalar_code_of_logit(fm::kF16),
  F32 = fm::scalar_code_of_logit(fm::kF32),
  F64 = fm::scalar_code_of_logit(fm::kF64),
  I8 = fm::scalar_code_of_label(fm::kI8),
  I16 = fm::scalar_code_of_label(fm::kI16),
  I32 = fm::scalar_code_of_label(fm::kI32),
  I64 = fm::scalar_code_of_label(fm::kI64),
  U8 = fm::scalar_code_of_label(fm::kU8),
  U16 = fm::scalar_code_of_label(fm::kU16),
  U32 = fm::scalar_code_of_label(fm::kU32),
  U64 = fm::scalar_code_of_label(fm::kU64),
  Bool = fm::kScalarBool,
};

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
  return fm::read_scalar(p, int(r), [swap](const auto* q) { return load<std::remove_cv_t<std::remove_pointer_t<decltype(q)>>>(q, swap); });
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

// Types and objects looked up once, by init_scalar_reader().
struct Cache {
  bool ready = false;
  PyTypeObject* ndarray = nullptr;
  PyObject* generic = nullptr;           // numpy.generic
  PyObject* complexfloating = nullptr;   // numpy.complexfloating
  PyObject* number_abc = nullptr;        // numbers.Number
  PyObject* complex_abc = nullptr;       // numbers.Complex
  PyObject* real_abc = nullptr;          // numbers.Real
  PyObject* integral_abc = nullptr;      // numbers.Integral
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
};

Cache g;

// NumPy scalar objects store their value right after the object header
// (numpy/arrayscalars.h: struct { PyObject_HEAD; T obval; }), for every NumPy
// version we support. init_scalar_reader() verifies this for each type before trusting it.
const void* scalar_payload(PyObject* o) {
  return reinterpret_cast<const char*>(o) + sizeof(PyObject);
}

// A new reference kept for the life of the process.
PyObject* keep(py::object o) { return o.release().ptr(); }

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

// float(o) for the slow paths. Sets r.kind = Bad when it cannot be converted.
void read_by_float(PyObject* o, ScalarRead& r) {
  PyObject* f = PyNumber_Float(o);
  if (f == nullptr) {
    // Let anything but "not convertible" through: hiding a RuntimeError from user
    // code (a re-entrant add(), say) behind a TypeError would mislead.
    if (!PyErr_ExceptionMatches(PyExc_TypeError) && !PyErr_ExceptionMatches(PyExc_ValueError)) {
      r.kind = ScalarKind::Error;
      return;
    }
    PyErr_Clear();
    r.kind = ScalarKind::Bad;
    r.why = "it cannot be converted to float";
    return;
  }
  r.kind = ScalarKind::Host;
  r.value = PyFloat_AS_DOUBLE(f);
  Py_DECREF(f);
  // Integer-ness for Chainer's `_n`: an integral number or an integer/bool dtype.
  int integral = PyObject_IsInstance(o, g.integral_abc);
  if (integral < 0) { PyErr_Clear(); integral = 0; }
  r.integer = integral != 0 || has_integer_dtype(o);
}


// ---- torch tensors -------------------------------------------------------------------------
// torch.Tensor carries __cuda_array_interface__ as a class property, so without this a CPU
// tensor would be classified as a device array. torch is never imported here: its types are
// looked up in sys.modules the first time a value reaches this point after torch was imported.
struct TorchCache {
  bool ready = false;
  PyTypeObject* tensor = nullptr;     // torch.Tensor
  PyTypeObject* parameter = nullptr;  // torch.nn.Parameter
  struct Dtype {
    PyObject* dtype;
    Raw raw;
    bool integer;
  };
  std::vector<Dtype> dtypes;  // torch.dtype objects we read in place
  PyObject* s_is_cuda = nullptr;
  PyObject* s_is_cpu = nullptr;
  PyObject* s_is_neg = nullptr;
  PyObject* s_data_ptr = nullptr;
  PyObject* s_is_complex = nullptr;
};

TorchCache g_torch;

// Fills g_torch once torch is fully imported; false until then (never sets an exception).
bool torch_ready() {
  if (g_torch.ready) return true;
  PyObject* torch = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");  // borrowed
  if (torch == nullptr) return false;
  PyObject* tensor = PyObject_GetAttrString(torch, "Tensor");
  PyObject* nn = PyObject_GetAttrString(torch, "nn");
  PyObject* parameter = nn ? PyObject_GetAttrString(nn, "Parameter") : nullptr;
  Py_XDECREF(nn);
  if (tensor == nullptr || parameter == nullptr || !PyType_Check(tensor) || !PyType_Check(parameter)) {
    PyErr_Clear();  // torch half-imported: try again later
    Py_XDECREF(tensor);
    Py_XDECREF(parameter);
    return false;
  }
  struct Named {
    const char* name;
    Raw raw;
  };
  const Named named[] = {{"float32", Raw::F32}, {"float64", Raw::F64}, {"float16", Raw::F16},
                         {"bfloat16", Raw(fm::scalar_code_of_logit(fm::kBF16))},
                         {"int64", Raw::I64}, {"int32", Raw::I32}, {"int16", Raw::I16}, {"int8", Raw::I8},
                         {"uint8", Raw::U8}, {"uint16", Raw::U16}, {"uint32", Raw::U32}, {"uint64", Raw::U64},
                         {"bool", Raw::Bool}};
  for (const Named& n : named) {
    PyObject* dt = PyObject_GetAttrString(torch, n.name);  // kept for the life of the process
    if (dt == nullptr) {
      PyErr_Clear();  // older torch without uint16/32/64
      continue;
    }
    const bool floating = n.raw == Raw::F16 || n.raw == Raw::F32 || n.raw == Raw::F64 ||
                          int(n.raw) == fm::scalar_code_of_logit(fm::kBF16);
    g_torch.dtypes.push_back({dt, n.raw, !floating});
  }
  g_torch.tensor = reinterpret_cast<PyTypeObject*>(tensor);
  g_torch.parameter = reinterpret_cast<PyTypeObject*>(parameter);
  g_torch.s_is_cuda = PyUnicode_InternFromString("is_cuda");
  g_torch.s_is_cpu = PyUnicode_InternFromString("is_cpu");
  g_torch.s_is_neg = PyUnicode_InternFromString("is_neg");
  g_torch.s_data_ptr = PyUnicode_InternFromString("data_ptr");
  g_torch.s_is_complex = PyUnicode_InternFromString("is_complex");
  g_torch.ready = true;
  return true;
}

// 1 if getattr(o, name) is True, 0 if not, -1 when it cannot be read (exception cleared).
int attr_true(PyObject* o, PyObject* name) {
  PyObject* v = PyObject_GetAttr(o, name);
  if (v == nullptr) {
    PyErr_Clear();
    return -1;
  }
  int truth = PyObject_IsTrue(v);
  Py_DECREF(v);
  if (truth < 0) PyErr_Clear();
  return truth;
}

// Reads a torch tensor (true) or says it is not one (false). 0-d CPU tensors of the plain
// Tensor/Parameter types are read in place through data_ptr() (after ruling out the negative
// bit, whose memory holds the un-negated value); CUDA ones are Device; other 0-d tensors
// (subclasses, other devices, quantized) go through float(). Never leaves an exception set.
bool read_torch_tensor(PyObject* o, ScalarRead& r) {
  PyTypeObject* t = Py_TYPE(o);
  if (!torch_ready() || !PyType_IsSubtype(t, g_torch.tensor)) return false;
  if (ndim_of(o) != 0) {
    r.kind = ScalarKind::NotScalar;
    return true;
  }
  if (attr_true(o, g_torch.s_is_cuda) == 1) {
    r.kind = ScalarKind::Device;
    return true;
  }
  PyObject* dt = PyObject_GetAttr(o, g.s_dtype);
  if (dt == nullptr) PyErr_Clear();
  const TorchCache::Dtype* known = nullptr;
  for (const auto& d : g_torch.dtypes) {
    if (d.dtype == dt) known = &d;
  }
  if (known == nullptr) {
    const bool complex = dt != nullptr && attr_true(dt, g_torch.s_is_complex) == 1;
    Py_XDECREF(dt);
    if (complex) {
      r.kind = ScalarKind::Bad;
      r.why = "complex values are not supported";
      return true;
    }
    read_by_float(o, r);
    return true;
  }
  Py_DECREF(dt);  // the cache holds its own reference
  if ((t == g_torch.tensor || t == g_torch.parameter) && attr_true(o, g_torch.s_is_cpu) == 1) {
    PyObject* neg = PyObject_CallMethodNoArgs(o, g_torch.s_is_neg);
    const int negated = neg == nullptr ? -1 : PyObject_IsTrue(neg);
    Py_XDECREF(neg);
    PyObject* ptr = negated == 0 ? PyObject_CallMethodNoArgs(o, g_torch.s_data_ptr) : nullptr;
    void* p = ptr != nullptr && PyLong_Check(ptr) ? PyLong_AsVoidPtr(ptr) : nullptr;
    Py_XDECREF(ptr);
    if (PyErr_Occurred()) PyErr_Clear();
    if (p != nullptr) {
      r.kind = ScalarKind::Host;
      r.value = read_raw(p, known->raw, false);
      r.integer = known->integer;
      return true;
    }
  }
  read_by_float(o, r);
  r.integer = known->integer;
  return true;
}
}  // namespace

void init_scalar_reader() {
  if (g.ready) return;
  py::module_ np = py::module_::import("numpy");
  py::module_ numbers = py::module_::import("numbers");
  g.ndarray = reinterpret_cast<PyTypeObject*>(keep(np.attr("ndarray")));
  g.generic = keep(np.attr("generic"));
  g.complexfloating = keep(np.attr("complexfloating"));
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
  g.ready = true;
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

// Classifies an (already unwrapped) value or weight as Chainer would and reads
// it when it is a host real scalar. Never leaves a Python exception set.
ScalarRead read_scalar(PyObject* o) {
  ScalarRead r{ScalarKind::Host, 0.0, false, nullptr};
  // Fast paths: Python float (and numpy.float64, a float subclass), bool, int.
  if (PyFloat_Check(o)) {
    r.value = PyFloat_AS_DOUBLE(o);
    return r;
  }
  if (PyLong_Check(o)) {
    r.integer = true;
    r.value = PyLong_AsDouble(o);
    if (r.value == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      r.kind = ScalarKind::Bad;
      r.why = "the integer is too large for float64";
    }
    return r;
  }
  PyTypeObject* t = Py_TYPE(o);
  for (const auto& f : g.scalars) {
    if (f.type == t) {
      r.value = read_raw(scalar_payload(o), f.raw, false);
      r.integer = raw_is_integer(f.raw);
      return r;
    }
  }
  // Strings and bytes pass numpy.isscalar (Chainer then fails on `+=`).
  if (PyUnicode_Check(o) || PyBytes_Check(o)) {
    r.kind = ScalarKind::Bad;
    r.why = "strings and bytes are not numbers";
    return r;
  }
  if (PyComplex_Check(o)) {
    r.kind = ScalarKind::Bad;
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
        r.value = read_raw(view.buf, raw, swap);
        r.integer = raw_is_integer(raw);
      }
      PyBuffer_Release(&view);
      if (nd != 0) {
        r.kind = ScalarKind::NotScalar;
        return r;
      }
      if (known) return r;
      if (complex_fmt) {
        r.kind = ScalarKind::Bad;
        r.why = "complex values are not supported";
        return r;
      }
      if (text_fmt) {
        r.kind = ScalarKind::Bad;
        r.why = "strings and bytes are not numbers";
        return r;
      }
    } else {
      PyErr_Clear();  // e.g. datetime arrays: no buffer; decide by ndim below
    }
    if (ndim_of(o) != 0) {
      r.kind = ScalarKind::NotScalar;
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
      r.kind = ScalarKind::Bad;
      r.why = "complex values are not supported";
      return r;
    }
    read_by_float(o, r);
    return r;
  }
  if (read_torch_tensor(o, r)) return r;  // before the device test: see TorchCache
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
    r.kind = nd == 0 ? ScalarKind::Device : ScalarKind::NotScalar;
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
      int is_complex = PyObject_IsInstance(o, g.complex_abc);
      if (is_complex < 0) { PyErr_Clear(); is_complex = 0; }
      r.kind = ScalarKind::Bad;
      // Decimal is a Number but not a Real; Chainer's float sums reject it (TypeError).
      r.why = is_complex ? "complex values are not supported"
                         : "it is not a real number (numbers.Real), so it cannot be added to float sums";
      return r;
    }
    read_by_float(o, r);
    return r;
  }
  // memoryview is in numpy.ScalarType, so Chainer accepts it and then fails.
  if (PyMemoryView_Check(o)) {
    r.kind = ScalarKind::Bad;
    r.why = "memoryview is not a number";
    return r;
  }
  r.kind = ScalarKind::NotScalar;
  return r;
}

bool has_integer_dtype(PyObject* o) {
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

}  // namespace fmpy
