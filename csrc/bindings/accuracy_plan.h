// fusedmetrics._core.AccuracyPlan: one normalised CPU accuracy call shape (the class;
// accuracy_bindings.cpp binds it). Python (fusedmetrics/_accuracy.py) validates arguments
// and normalises shapes to y:(N, C, M), t:(N, M); this layer re-checks that every element
// the kernels will read lies inside the arrays' buffers, then runs the kernels.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/accuracy_call_checks.h"
#include "bindings/buffer_checks.h"
#include "cpu/accuracy.h"
#include "cpu/planner.h"
#include "semantics/dtypes.h"

namespace fm::bindings {

namespace py = pybind11;

// out is written in place through an int64*: it must BE a native int64 (2,) array
// (no converted copy that would take the counts and be dropped), aligned, writeable,
// and its two counters must be distinct memory.
inline void require_counter_out(const py::array& out) {
  const py::dtype dt = out.dtype();
  // numpy spells native byte order '=' (a non-native one '<' or '>').
  const bool native_int64 = dt.kind() == 'i' && dt.itemsize() == 8 && dt.byteorder() == '=';
  if (!native_int64 || out.ndim() != 1 || out.shape(0) != 2)
    throw std::invalid_argument("out must be a native-byte-order int64 array of shape (2,)");
  if (!out.writeable()) throw std::invalid_argument("out must be writeable");
  if (out.strides(0) == 0) throw std::invalid_argument("out must not overlap itself (zero stride)");
  if (reinterpret_cast<uintptr_t>(out.data()) % alignof(int64_t) != 0 || out.strides(0) % alignof(int64_t) != 0)
    throw std::invalid_argument("out must be aligned to 8 bytes");
}

// One normalised call shape, built once by Python and reused for every batch of
// that shape (fusedmetrics/accuracy.py caches them): the per-call work is then the
// buffer checks and the kernels. Its planner (cpu/planner.h) chooses the kernel and
// thread cap, by measurement or heuristic, among the active ISA's kernels and those
// of the builds below it; set_active_isa() or set_num_threads() make it choose again,
// so a cached plan never runs an ISA build above the active one.
class AccuracyPlan {
 public:
  AccuracyPlan(int y_code, int64_t N, int64_t C, int64_t M, std::array<int64_t, 3> ys, int t_code,
               std::array<int64_t, 2> ts, bool has_ignore, int64_t ignore, int64_t k)
      : call_(fm::bindings::make_accuracy_call(y_code, N, C, M, ys, t_code, ts, has_ignore, ignore, k, 63)),
        planner_(call_) {}

  // Adds [correct, total] of (y, t) into out.
  void count(const py::array& y, const py::array& t, const py::array& out) {
    run(y, t, out, [&](const fm::AccuracyCall& call) { return planner_.count(call); });
  }

  // What the planner chose, or is timing, for this plan (fusedmetrics.planner_decisions).
  py::dict planner_state() {
    const fm::cpu::KernelPlanner::State s = planner_.state();
    py::dict d;
    d["phase"] = s.phase;
    d["source"] = s.source;
    d["kernel"] = s.kernel;
    d["max_threads"] = s.max_threads;
    d["signature"] = s.signature;
    d["timed_calls"] = s.timed_calls;
    d["pairs"] = s.pairs;
    return d;
  }

  // The names of every candidate kernel of every ISA build usable here ("<isa>/<kernel>").
  std::vector<std::string> candidates() const {
    std::vector<std::string> names;
    for (const auto& c : fm::cpu::usable_candidates(call_)) names.emplace_back(c.name);
    return names;
  }

  // count() with the named candidate and at most max_threads threads (0: the default):
  // tests run every candidate through this; a planner times them with it.
  void count_with(const std::string& name, int max_threads, const py::array& y, const py::array& t,
                  const py::array& out) {
    if (max_threads < 0) throw std::invalid_argument("max_threads must be >= 0");
    for (const auto& c : fm::cpu::usable_candidates(call_)) {
      if (name == c.name)
        return run(y, t, out, [&](const fm::AccuracyCall& call) { return fm::cpu::count_accuracy(call, c.fn, max_threads); });
    }
    throw std::invalid_argument("no candidate kernel named '" + name + "' for this call on this CPU");
  }

 private:
  // Checks the arrays against the plan, then counts(call) without the GIL.
  template <class CountFn>
  void run(const py::array& y, const py::array& t, const py::array& out, const CountFn& counts_of) {
    if (y.itemsize() != fm::logit_itemsize(call_.y_code) || t.itemsize() != fm::label_itemsize(call_.t_code))
      throw std::invalid_argument("the arrays' item sizes do not match the plan");
    require_counter_out(out);
    const int64_t yi = y.itemsize(), ti = t.itemsize();
    const auto& p = call_;
    const int64_t y_shape[] = {p.N, p.C, p.M}, y_strides[] = {p.ys_n, p.ys_c, p.ys_m};
    const int64_t t_shape[] = {p.N, p.M}, t_strides[] = {p.ts_n, p.ts_m};
    require_inside(extent_of(3, y_shape, y_strides, yi, yi), y, "y");
    require_inside(extent_of(2, t_shape, t_strides, ti, ti), t, "t");

    fm::AccuracyCall call = call_;
    call.y = y.data();
    call.t = t.data();
    fm::cpu::Counts counts;
    {
      py::gil_scoped_release release;
      counts = counts_of(call);
    }
    char* base = static_cast<char*>(const_cast<void*>(out.data()));
    *reinterpret_cast<int64_t*>(base) += counts.correct;
    *reinterpret_cast<int64_t*>(base + out.strides(0)) += counts.total;
  }

 public:
  // The torch CPU fast path (no numpy views, ~2 us each): y_ptr / t_ptr are the tensors'
  // data_ptr(), y_storage / t_storage their untyped_storage(). Every byte the plan reads
  // is checked to lie inside [storage.data_ptr(), + nbytes()), read here under the GIL,
  // and the kernel runs WITH the GIL held, so no Python thread can resize or free a
  // storage between the check and the last read. out_ptr: a fresh C-contiguous int64
  // (2,) tensor that Python allocated; [correct, total] are added into it. Returns false,
  // touching nothing, for what the kernels cannot take in place (see fits_in_place).
  bool count_torch(const py::object& y_storage, uintptr_t y_ptr, const py::object& t_storage, uintptr_t t_ptr,
                   uintptr_t out_ptr) {
    if (!fits_in_place(y_ptr, t_ptr)) return false;
    if (out_ptr == 0 || out_ptr % alignof(int64_t) != 0) throw std::invalid_argument("out must be aligned to 8 bytes");
    const Extents e = extents();
    require_inside_storage(e.y, y_ptr, y_storage, "y");
    require_inside_storage(e.t, t_ptr, t_storage, "t");
    const fm::cpu::Counts counts = count_at(y_ptr, t_ptr);
    int64_t* out = reinterpret_cast<int64_t*>(out_ptr);
    out[0] += counts.correct;
    out[1] += counts.total;
    return true;
  }

  // Whether count_at may read memory at (y_ptr, t_ptr): a non-empty view, pointers
  // aligned to their items (the kernels read through typed pointers), and at most 4 MiB
  // read. count_at keeps the GIL through the kernel (so no thread can free or shrink a
  // storage while it reads): only for small calls, where the saved microseconds matter
  // and the GIL is held for about as long. Large ones take the general path, which
  // releases the GIL while the kernels run.
  bool fits_in_place(uintptr_t y_ptr, uintptr_t t_ptr) const {
    const Extents e = extents();
    const int64_t yi = fm::logit_itemsize(call_.y_code), ti = fm::label_itemsize(call_.t_code);
    if (e.y.empty || e.t.empty || y_ptr % uintptr_t(yi) != 0 || t_ptr % uintptr_t(ti) != 0) return false;
    constexpr int64_t kMaxBytesUnderGil = int64_t(1) << 22;
    return (e.y.high - e.y.low) + (e.t.high - e.t.low) <= kMaxBytesUnderGil;
  }

  // [correct, total] of the plan's view at these addresses, with the GIL held. The caller
  // checked fits_in_place and that every byte the view reads is the tensors' memory.
  fm::cpu::Counts count_at(uintptr_t y_ptr, uintptr_t t_ptr) {
    fm::AccuracyCall call = call_;
    call.y = reinterpret_cast<const void*>(y_ptr);
    call.t = reinterpret_cast<const void*>(t_ptr);
    return planner_.count(call);
  }

 private:
  struct Extents {
    Extent y, t;
  };

  // The byte ranges the plan's view of y and t reads, relative to their first elements.
  Extents extents() const {
    const auto& p = call_;
    const int64_t yi = fm::logit_itemsize(p.y_code), ti = fm::label_itemsize(p.t_code);
    const int64_t y_shape[] = {p.N, p.C, p.M}, y_strides[] = {p.ys_n, p.ys_c, p.ys_m};
    const int64_t t_shape[] = {p.N, p.M}, t_strides[] = {p.ts_n, p.ts_m};
    return {extent_of(3, y_shape, y_strides, yi, yi), extent_of(2, t_shape, t_strides, ti, ti)};
  }

  // storage.<name>() as an unsigned integer (interned name, vectorcall: this runs per call).
  static uintptr_t call_method_uintptr(const py::object& obj, const char* name) {
    static py::str data_ptr_name = py::reinterpret_steal<py::str>(PyUnicode_InternFromString("data_ptr"));
    static py::str nbytes_name = py::reinterpret_steal<py::str>(PyUnicode_InternFromString("nbytes"));
    PyObject* method = name[0] == 'd' ? data_ptr_name.ptr() : nbytes_name.ptr();
    py::object r = py::reinterpret_steal<py::object>(PyObject_CallMethodNoArgs(obj.ptr(), method));
    if (!r) throw py::error_already_set();
    const unsigned long long v = PyLong_AsUnsignedLongLong(r.ptr());
    if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) throw py::error_already_set();
    return uintptr_t(v);
  }

  // [ptr + view.low, ptr + view.high) must lie inside the storage's bytes.
  static void require_inside_storage(const fm::bindings::Extent& view, uintptr_t ptr, const py::object& storage,
                                     const char* name) {
    const uintptr_t lo = call_method_uintptr(storage, "data_ptr");
    const uintptr_t nbytes = call_method_uintptr(storage, "nbytes");
    using wide = __int128;
    if (lo == 0 || wide(ptr) + view.low < wide(lo) || wide(ptr) + view.high > wide(lo) + wide(nbytes))
      throw std::out_of_range(std::string("the view of ") + name + " reaches outside its tensor's storage");
  }

  const fm::AccuracyCall call_;
  fm::cpu::KernelPlanner planner_;
};

}  // namespace fm::bindings
