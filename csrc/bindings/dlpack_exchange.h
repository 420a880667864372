// Reading a tensor's layout through the DLPack C exchange API (DLPack 1.3, "Python
// specification: C exchange API"): a framework puts a PyCapsule named
// "dlpack_exchange_api" on its tensor type (torch.Tensor.__dlpack_c_exchange_api__ in
// recent torch releases) whose table has a function that fills a non-owning DLTensor (data pointer,
// device, dtype, shape, strides) from a tensor object in tens of nanoseconds, where the
// same facts through Python attributes cost about a microsecond per tensor.
//
// Only the parts this project reads are declared here, laid out as the DLPack ABI fixes
// them (dlpack.h, major version 1). torch is never linked: the table comes at run time.
#pragma once
#include <Python.h>

#include <cstdint>
#include <stdexcept>

namespace fm::bindings::dlpack {

enum : int32_t { kDLCPU = 1 };
enum : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4 };

struct Device {
  int32_t device_type;
  int32_t device_id;
};

struct DataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct Tensor {  // DLTensor
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; may be null for a compact row-major tensor
  uint64_t byte_offset;
};

struct Version {
  uint32_t major;
  uint32_t minor;
};

// DLManagedTensorVersioned: what the table's allocator returns. Its layout up to
// dl_tensor is fixed for every major version 1 ("keep everything until this field").
struct ManagedTensorVersioned {
  Version version;
  void* manager_ctx;
  void (*deleter)(ManagedTensorVersioned* self);
  uint64_t flags;
  Tensor dl_tensor;
};

using SetErrorFn = void (*)(void* error_ctx, const char* kind, const char* message);

// DLPackExchangeAPI: header, then five function pointers in this order.
struct ExchangeApi {
  Version version;
  const ExchangeApi* prev_api;
  int (*managed_tensor_allocator)(Tensor* prototype, ManagedTensorVersioned** out, void* error_ctx,
                                  SetErrorFn set_error);
  int (*managed_tensor_from_py_object_no_sync)(void* py_object, ManagedTensorVersioned** out);
  int (*managed_tensor_to_py_object_no_sync)(ManagedTensorVersioned* tensor, void** out_py_object);
  int (*dltensor_from_py_object_no_sync)(void* py_object, Tensor* out);  // optional (may be null)
  void* current_work_stream;
};

// The table behind a "dlpack_exchange_api" capsule, or std::invalid_argument when it is
// not one, is of another major version, or lacks what the accuracy fast path calls
// (tensor views, the allocator and the wrapper back into a Python tensor).
inline const ExchangeApi* exchange_api_of(PyObject* capsule) {
  void* p = PyCapsule_GetPointer(capsule, "dlpack_exchange_api");
  if (p == nullptr) {
    PyErr_Clear();
    throw std::invalid_argument("expected a PyCapsule named 'dlpack_exchange_api'");
  }
  const auto* api = static_cast<const ExchangeApi*>(p);
  // Minor versions only add fields after these; another major one may reorder them.
  while (api != nullptr && api->version.major != 1) api = api->prev_api;
  if (api == nullptr || api->version.minor < 3)
    throw std::invalid_argument("the DLPack exchange API has no major version 1 table (minor >= 3)");
  if (!api->dltensor_from_py_object_no_sync || !api->managed_tensor_allocator ||
      !api->managed_tensor_to_py_object_no_sync)
    throw std::invalid_argument("the DLPack exchange API lacks dltensor_from_py_object_no_sync or the allocator");
  return api;
}

}  // namespace fm::bindings::dlpack
