// Host state of a DictSummary: one row of float64 moments per key (slot), plus
// whether every weight that key received was an integer (Chainer then stores an
// integer `_n`). Pure C++; the Python-facing parsing lives in the bindings.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "semantics/moments.h"

namespace fm {

// One validated host value for a slot: weight > 0 and finite.
struct SummaryUpdate {
  std::size_t slot;
  double value;
  double weight;
  bool integer_weight;
};

class SummaryTable {
 public:
  std::size_t size() const { return rows_.size(); }
  // New rows start empty (W = 0) with the integer flag set.
  void resize(std::size_t n);
  void clear();

  // Folds the updates in, in order (West's rule). Slots must be < size().
  void apply(const SummaryUpdate* updates, std::size_t n);
  // Chan-merges `other` into a row.
  void merge_row(std::size_t slot, const Moments& other, bool integer_weights);
  void set_row(std::size_t slot, const Moments& m, bool integer_weights);
  void clear_integer_flag(std::size_t slot) { integer_[slot] = 0; }

  const Moments& row(std::size_t slot) const { return rows_[slot]; }
  bool integer_weights(std::size_t slot) const { return integer_[slot] != 0; }

 private:
  std::vector<Moments> rows_;
  std::vector<std::uint8_t> integer_;
};

// Population standard deviation of a row (variance clamped at 0; NaN stays NaN).
double summary_std(const Moments& m);

}  // namespace fm
