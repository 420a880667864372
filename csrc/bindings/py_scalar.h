// Reading one Python object as a scalar, with Chainer's DictSummary rules.
//
// Chainer accepts a value when `numpy.isscalar(v) or getattr(v, 'ndim', -1) == 0`
// (after unwrapping a Variable) and skips everything else. read_scalar() makes
// that decision without creating Python objects on the common paths: Python
// float/int/bool, NumPy scalars (read in place) and 0-d NumPy arrays (read through
// the buffer protocol). Device arrays (__cuda_array_interface__) are classified,
// never read: their values stay on the device.
#pragma once
#include <pybind11/pybind11.h>

namespace fmpy {

// What a value (or weight) is, in Chainer's terms.
enum class ScalarKind {
  Host,       // a real host scalar; ScalarRead::value holds it
  Device,     // a 0-d device array (__cuda_array_interface__)
  NotScalar,  // Chainer skips it (value) or rejects it (weight)
  Bad,        // Chainer takes it for a scalar but it is not a real number (str, complex, ...)
  Error,      // its conversion raised something other than TypeError/ValueError
              // (e.g. a RuntimeError from a re-entrant add()): the exception is set
};

struct ScalarRead {
  ScalarKind kind;
  double value;       // for Host
  bool integer;       // integer or bool type: Chainer's `_n` stays an integer
  const char* why;    // for Bad: the reason, for the error message
};

// Looks up the NumPy types once. Idempotent; call with the GIL held before any
// other function here.
void init_scalar_reader();

// A chainer.Variable (detected by class name, so Chainer is never imported)
// becomes a new reference to its `.array`; anything else a new reference to
// itself. Null with a Python exception set on failure.
PyObject* unwrap_variable(PyObject* o);

// Classifies an (already unwrapped) object and reads it when it is a host real
// scalar. Leaves a Python exception set only with ScalarKind::Error.
ScalarRead read_scalar(PyObject* o);

// Whether `o.dtype.kind` is 'i', 'u' or 'b' (false when o has no dtype).
// Never leaves a Python exception set.
bool has_integer_dtype(PyObject* o);

}  // namespace fmpy
