// fusedmetrics._core.DictSummaryState: the host core of Summary / DictSummary.
//
// add(dict) is one call: it walks the dict with PyDict_Next and reads each value
// with read_scalar (py_scalar.h), applying Chainer's acceptance rules
// (chainer/reporter.py, DictSummary.add) item by item. Every item is validated
// before any state changes, so a failing add() loses nothing. Device values
// (objects with __cuda_array_interface__) are not read here: add() leaves the
// validated batch pending and hands the device items back to Python, which folds
// them in with one kernel launch and then calls commit_pending (or
// discard_pending when the launch failed).
//
// Concurrency (see Exclusive in the .cpp): add, add_item, combine and clear are
// atomic with respect to other threads: a thread that finds another inside one
// waits for it with the GIL released, and a device batch keeps the other threads
// out until commit_pending / discard_pending. Readers wait likewise and then copy
// what they need without running Python code, so they see whole add()s only.
// A call from the thread that is already inside (a key's __hash__ or a value's
// __float__ calling add() on the same summary) raises RuntimeError and changes
// nothing; reading from there is allowed (it sees the state before the batch).
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu/summary_table.h"

namespace fmpy {

namespace py = pybind11;

class DictSummaryState {
 public:
  DictSummaryState();

  // Number of keys (slots), in first-seen order.
  std::size_t size() const;

  // Validates and adds a dict (or Mapping). Returns None when everything was on
  // the host (committed), else (slots, values, weights) of the device items with
  // the whole batch pending.
  py::object add(py::handle d);
  // Summary.add(value, weight): one item under `key`. A value that is not a
  // scalar raises ValueError instead of being skipped. Returns as add().
  py::object add_item(py::handle key, py::handle value, py::handle weight);
  // Ends the device batch that add() left pending in this thread.
  void commit_pending();
  void discard_pending();

  py::list names() const;
  // Host moments, float64 (K, 3) [W, mean, M2].
  py::array_t<double> moments() const;
  // Host moments with device_rows[slot] Chan-merged into every device slot.
  py::array_t<double> merged_moments(
      py::array_t<double, py::array::c_style | py::array::forcecast> device_rows) const;
  py::array_t<bool> integer_weights() const;
  py::list device_slots() const;
  bool has_device() const;

  // {key: numpy.float64 mean} in first-seen order (host parts only).
  py::dict compute_mean() const;
  // {key: mean, key + '.std': population std} in first-seen order (host parts only).
  py::dict make_statistics() const;
  // (mean, std) of one slot's host part as numpy.float64.
  py::tuple statistics_of(std::size_t slot) const;

  // Chan-merges rows into the host part (merge=true) or replaces the whole state
  // (merge=false). Everything is validated first.
  void combine(py::handle names,
               py::array_t<double, py::array::c_style | py::array::forcecast> moments,
               py::array_t<bool, py::array::c_style | py::array::forcecast> integer, bool merge);
  void clear();
  // (names, moments, integer_weights) read at one moment: what state_dict() needs.
  py::tuple snapshot() const;

  // The guard (public for the RAII helper in the .cpp).
  void enter_exclusive(const char* what);
  void leave_exclusive();
  void wait_readable() const;

 private:
  struct DeviceItem {
    std::size_t slot;
    bool integer_weight;
  };

  std::size_t slot_or_create(PyObject* key);
  std::size_t pending_slot(PyObject* key);
  void parse_item(PyObject* key, PyObject* value_in, PyObject* weight_in, bool single);
  py::object finish();
  void commit();
  void drop_pending();
  void clear_state();

  class Exclusive;
  // Rows and keys copied at one moment (no Python code runs while copying).
  std::vector<fm::Moments> rows_copy() const;
  // The thread inside add/add_item/combine/clear (or holding a device batch), if any.
  mutable std::mutex guard_mutex_;
  mutable std::condition_variable guard_free_;
  std::thread::id owner_;

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

}  // namespace fmpy
