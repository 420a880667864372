// _core.DTYPE_CODES: the dtype table of semantics/dtypes.h, which Python builds its
// own code tables from ({"logit"|"label"|"scalar": {numpy name: (code, itemsize)}}).
#include <pybind11/pybind11.h>

#include "semantics/dtypes.h"

namespace py = pybind11;

void bind_dtypes(py::module_& m) {
  py::dict logit, label, scalar;
  for (const auto& e : fm::kLogitDtypes) {
    logit[e.name] = py::make_tuple(e.code, e.itemsize);
    const int code = fm::scalar_code_of_logit(e.code);
    scalar[e.name] = py::make_tuple(code, fm::scalar_itemsize(code));
  }
  for (const auto& e : fm::kLabelDtypes) {
    label[e.name] = py::make_tuple(e.code, e.itemsize);
    const int code = fm::scalar_code_of_label(e.code);
    scalar[e.name] = py::make_tuple(code, fm::scalar_itemsize(code));
  }
  scalar["bool"] = py::make_tuple(int(fm::kScalarBool), fm::scalar_itemsize(fm::kScalarBool));
  py::dict codes;
  codes["logit"] = logit;
  codes["label"] = label;
  codes["scalar"] = scalar;
  m.attr("DTYPE_CODES") = codes;
}
