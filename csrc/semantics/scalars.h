// Reading one summary value or weight of any scalar code (fm::ScalarType) as a
// double, shared by the host scalar reader and the CUDA summary kernel. load(p)
// reads *p for a typed pointer p: memcpy (unaligned, maybe byte-swapped) on the
// host, a plain load on the GPU.
#pragma once
#include "dtypes.h"
#include "hd.h"
#include "logits.h"

namespace fm {

#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Load>
FM_HD double read_scalar(const void* p, int code, const Load& load) {
  if (code < kScalarLabelBase) {
    return with_logit_code(code, [&](auto tag) -> double {
      constexpr int kCode = decltype(tag)::value;
      return double(widen_logit<kCode>(load(static_cast<const typename LogitTraits<kCode>::Storage*>(p))));
    });
  }
  if (code < kScalarBool) {
    return with_label_type(code - kScalarLabelBase,
                           [&](auto zero) -> double { return double(load(static_cast<const decltype(zero)*>(p))); });
  }
  return load(static_cast<const uint8_t*>(p)) != 0 ? 1.0 : 0.0;
}

}  // namespace fm
