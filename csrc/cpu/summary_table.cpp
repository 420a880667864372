#include "summary_table.h"

#include <cmath>

namespace fm {

void SummaryTable::resize(std::size_t n) {
  rows_.resize(n, Moments{0.0, 0.0, 0.0});
  integer_.resize(n, 1);
}

void SummaryTable::clear() {
  rows_.clear();
  integer_.clear();
}

void SummaryTable::apply(const SummaryUpdate* updates, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const SummaryUpdate& u = updates[i];
    moments_add(rows_[u.slot], u.value, u.weight);
    if (!u.integer_weight) integer_[u.slot] = 0;
  }
}

void SummaryTable::merge_row(std::size_t slot, const Moments& other, bool integer_weights) {
  rows_[slot] = moments_merge(rows_[slot], other);
  if (!integer_weights) integer_[slot] = 0;
}

void SummaryTable::set_row(std::size_t slot, const Moments& m, bool integer_weights) {
  rows_[slot] = m;
  integer_[slot] = integer_weights ? 1 : 0;
}

double summary_std(const Moments& m) { return std::sqrt(moments_variance(m)); }

}  // namespace fm
