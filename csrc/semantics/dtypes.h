// The one dtype table: every code the kernels, the bindings and Python use, with
// its numpy name and its storage type (the item size is sizeof the storage type).
// Python builds its own tables from _core.DTYPE_CODES, which is generated from
// these lists, so nothing is written twice.
#pragma once
#include <cstdint>

#include "hd.h"

// X(code, numpy name, storage type). float16 and bfloat16 are stored as their bits.
#define FM_LOGIT_DTYPES(X)       \
  X(kF16, "float16", uint16_t)   \
  X(kBF16, "bfloat16", uint16_t) \
  X(kF32, "float32", float)      \
  X(kF64, "float64", double)

#define FM_LABEL_DTYPES(X)    \
  X(kI8, "int8", int8_t)      \
  X(kI16, "int16", int16_t)   \
  X(kI32, "int32", int32_t)   \
  X(kI64, "int64", int64_t)   \
  X(kU8, "uint8", uint8_t)    \
  X(kU16, "uint16", uint16_t) \
  X(kU32, "uint32", uint32_t) \
  X(kU64, "uint64", uint64_t)

namespace fm {

#define FM_DTYPE_ENUMERATOR(code, name, T) code,
enum LogitType : int { FM_LOGIT_DTYPES(FM_DTYPE_ENUMERATOR) kNumLogitTypes };
enum LabelType : int { FM_LABEL_DTYPES(FM_DTYPE_ENUMERATOR) kNumLabelTypes };
#undef FM_DTYPE_ENUMERATOR

// Summary scalar codes: a value or weight of any logit dtype (same code), any label
// dtype (offset past the logits) or bool (last).
enum ScalarType : int {
  kScalarLabelBase = kNumLogitTypes,
  kScalarBool = kNumLogitTypes + kNumLabelTypes,
  kNumScalarTypes
};
FM_HD constexpr int scalar_code_of_logit(int logit_code) { return logit_code; }
FM_HD constexpr int scalar_code_of_label(int label_code) { return kScalarLabelBase + label_code; }

FM_HD constexpr bool valid_logit_code(int code) { return code >= 0 && code < kNumLogitTypes; }
FM_HD constexpr bool valid_label_code(int code) { return code >= 0 && code < kNumLabelTypes; }
FM_HD constexpr bool valid_scalar_code(int code) { return code >= 0 && code < kNumScalarTypes; }

#define FM_DTYPE_SIZE_CASE(code, name, T) \
  case code: return int(sizeof(T));
// Item sizes; 0 for an unknown code.
FM_HD constexpr int logit_itemsize(int code) {
  switch (code) { FM_LOGIT_DTYPES(FM_DTYPE_SIZE_CASE) default: return 0; }
}
FM_HD constexpr int label_itemsize(int code) {
  switch (code) { FM_LABEL_DTYPES(FM_DTYPE_SIZE_CASE) default: return 0; }
}
#undef FM_DTYPE_SIZE_CASE
FM_HD constexpr int scalar_itemsize(int code) {
  return code < kScalarLabelBase ? logit_itemsize(code)
         : code < kScalarBool    ? label_itemsize(code - kScalarLabelBase)
         : code == kScalarBool   ? int(sizeof(bool))
                                 : 0;
}

// The storage type of each code, for templates.
template <int Code> struct LogitStorage;
template <int Code> struct LabelStorage;
#define FM_LOGIT_STORAGE(code, name, T) \
  template <> struct LogitStorage<code> { using type = T; };
#define FM_LABEL_STORAGE(code, name, T) \
  template <> struct LabelStorage<code> { using type = T; };
FM_LOGIT_DTYPES(FM_LOGIT_STORAGE)
FM_LABEL_DTYPES(FM_LABEL_STORAGE)
#undef FM_LOGIT_STORAGE
#undef FM_LABEL_STORAGE

// Calls fn(T{}) with T the storage type of label code `code` (unknown codes are
// rejected by the bindings; they fall to the last type here). Kernels use it to
// instantiate per label type without writing the switch again. The CUDA pragma
// lets a host-device template call a device-only fn.
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Fn>
FM_HD auto with_label_type(int code, Fn&& fn) {
#define FM_LABEL_CASE(code, name, T) \
  case code: return fn(T{});
  switch (code) {
    FM_LABEL_DTYPES(FM_LABEL_CASE)
    default: return fn(uint64_t{});
  }
#undef FM_LABEL_CASE
}

// Calls fn(CodeTag<Code>{}) for logit code `code`, so kernels can be instantiated
// per logit dtype without writing the switch again.
template <int Code>
struct CodeTag {
  static constexpr int value = Code;
};
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Fn>
FM_HD auto with_logit_code(int code, Fn&& fn) {
#define FM_LOGIT_CASE(code, name, T) \
  case code: return fn(CodeTag<code>{});
  switch (code) {
    FM_LOGIT_DTYPES(FM_LOGIT_CASE)
    default: return fn(CodeTag<kF64>{});
  }
#undef FM_LOGIT_CASE
}

// The table itself, for the bindings that export it (_core.DTYPE_CODES).
struct DtypeEntry {
  const char* name;
  int code;
  int itemsize;
};
#define FM_DTYPE_ENTRY(code, name, T) DtypeEntry{name, code, int(sizeof(T))},
constexpr DtypeEntry kLogitDtypes[] = {FM_LOGIT_DTYPES(FM_DTYPE_ENTRY)};
constexpr DtypeEntry kLabelDtypes[] = {FM_LABEL_DTYPES(FM_DTYPE_ENTRY)};
#undef FM_DTYPE_ENTRY

}  // namespace fm
