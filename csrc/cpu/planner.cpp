// The measuring planner: round-robin timing of (kernel, thread cap) pairs on real
// calls, a bounded overhead, and the process-wide wisdom table.
#include "cpu/planner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"
#include "semantics/dtypes.h"

namespace fm::cpu {
namespace {

// Overhead budget: exploring pauses (the best pair so far runs) while the time spent
// beyond the heuristic pair's exceeds this fraction of the planning calls' time plus an
// allowance; past the hard cap the best pair so far is kept.
constexpr double kBudgetFraction = 0.2;
constexpr double kBudgetAllowanceSeconds = 0.05;
constexpr double kMaxOverheadSeconds = 2.0;
// A pair whose best time is more than this times the best pair's is not timed again.
constexpr double kDropRatio = 2.0;
// Leaving the heuristic's pair takes a clear win: a challenger's median must be below
// this fraction of the heuristic's. Three timings per pair on a busy machine (other
// processes, a shared VM) can rank two equal pairs either way, and a wrong switch
// (seen: one thread chosen over two under contention) costs more than a missed 10%.
constexpr double kSwitchMargin = 0.9;
// Leaving the heuristic's pair is confirmed: when the rounds end with another pair
// ahead, the two are timed this many more times each, alternately, and the switch
// stands only if the challenger still wins by the margin over all its timings. One
// noisy sample among three (seen: a 40% outlier on a shared VM) can fake a win.
constexpr int kConfirmRounds = 3;
// A plan that has made this many timed calls per pair and round decides anyway.
constexpr int kMaxCallsPerPairRound = 4;

PlannerMode mode_from_env() {
  const char* env = std::getenv("FUSEDMETRICS_PLANNER");
  if (env && std::strcmp(env, "heuristic") == 0) return PlannerMode::kHeuristic;
  return PlannerMode::kMeasure;
}

std::atomic<int>& mode_cell() {
  static std::atomic<int> mode{int(mode_from_env())};
  return mode;
}

struct Wisdom {
  std::mutex mutex;
  std::map<std::string, Decision> table;
  std::atomic<uint64_t> generation{0};  // moves on load and clear (not on a plan's own decision)
};
Wisdom& wisdom() {
  static Wisdom* w = new Wisdom;  // never destroyed: plans may outlive static destruction
  return *w;
}

struct FakeTimings {
  std::mutex mutex;
  std::map<std::string, double> seconds;
  std::atomic<bool> active{false};
};
FakeTimings& fake_timings() {
  static FakeTimings* f = new FakeTimings;
  return *f;
}

std::atomic<int64_t> g_timed_calls{0};

std::string pair_label(const char* name, int max_threads) { return std::string(name) + "@" + std::to_string(max_threads); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char* layout_kind(const AccuracyCall& c) {
  if (c.M == 1 && c.ys_c == 1) return "flat";      // a row's classes side by side
  if (c.M > 1 && c.ys_m == 1) return "vertical";   // classes are planes, samples side by side
  return "strided";
}

// What a decision may be reused for: the same kernels apply and cost about the same.
std::string signature_of(const AccuracyCall& c, int num_threads, const std::string& isa) {
  const double bytes = call_bytes(c);
  const int bucket = bytes >= 1 ? std::ilogb(bytes) : 0;
  return std::string(kLogitDtypes[c.y_code].name) + "/" + kLabelDtypes[c.t_code].name + "/C" + std::to_string(c.C) +
         "/" + layout_kind(c) + "/k" + std::to_string(std::min(c.k, c.C)) + (c.has_ignore ? "/ignore" : "/all") +
         "/2^" + std::to_string(bucket) + "B/t" + std::to_string(num_threads) + "/" + isa;
}

}  // namespace

PlannerMode planner_mode() { return PlannerMode(mode_cell().load(std::memory_order_relaxed)); }
void set_planner_mode(PlannerMode mode) { mode_cell().store(int(mode), std::memory_order_relaxed); }

std::map<std::string, Decision> planner_wisdom() {
  std::lock_guard<std::mutex> lock(wisdom().mutex);
  return wisdom().table;
}

void load_planner_wisdom(const std::map<std::string, Decision>& decisions) {
  std::lock_guard<std::mutex> lock(wisdom().mutex);
  for (const auto& [key, d] : decisions) wisdom().table[key] = d;
  wisdom().generation.fetch_add(1);
}

void clear_planner_wisdom() {
  std::lock_guard<std::mutex> lock(wisdom().mutex);
  wisdom().table.clear();
  wisdom().generation.fetch_add(1);
}

void set_fake_timings(const std::map<std::string, double>& seconds) {
  std::lock_guard<std::mutex> lock(fake_timings().mutex);
  fake_timings().seconds = seconds;
  fake_timings().active.store(!seconds.empty());
}

int64_t planner_timed_calls() { return g_timed_calls.load(); }

KernelPlanner::KernelPlanner(const AccuracyCall& shape) : shape_(shape) {}

Counts KernelPlanner::count(const AccuracyCall& call) {
  const Ticket ticket = next();
  if (ticket.pair < 0) return count_accuracy(call, ticket.fn, ticket.max_threads);
  // The clock brackets the kernel call only: the caller's checks are the same for every pair.
  const auto start = std::chrono::steady_clock::now();
  const Counts counts = count_accuracy(call, ticket.fn, ticket.max_threads);
  record(ticket, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return counts;
}

void KernelPlanner::reset_if_settings_changed() {
  if (isa_generation_ != isa_generation() || num_threads_ != get_num_threads() || mode_ != planner_mode() ||
      wisdom_generation_ != wisdom().generation.load())
    rebuild();
}

void KernelPlanner::rebuild() {
  // Read the settings first: one that moves during the rebuild triggers another.
  isa_generation_ = isa_generation();
  num_threads_ = get_num_threads();
  mode_ = planner_mode();
  wisdom_generation_ = wisdom().generation.load();
  const std::string active = active_isa();
  ++epoch_;

  // The active ISA's kernels in its own order (the heuristic's first), then those of
  // the builds below it, best build first; never a build above the active one.
  std::vector<KernelCandidate> kernels = kernel_candidates(active, shape_);
  const std::vector<std::string> isas = usable_isas();
  const auto active_at = std::find(isas.begin(), isas.end(), active);
  for (auto it = std::make_reverse_iterator(active_at); it != isas.rend(); ++it) {
    for (const auto& k : kernel_candidates(*it, shape_)) {
      const bool seen = std::any_of(kernels.begin(), kernels.end(),
                                    [&](const KernelCandidate& c) { return std::strcmp(c.name, k.name) == 0; });
      if (!seen) kernels.push_back(k);
    }
  }

  // Thread caps: the setting, half of it, one; caps the call's size makes equal are one pair.
  pairs_.clear();
  const int caps[] = {num_threads_, num_threads_ / 2, 1};
  for (const auto& k : kernels) {
    std::vector<int64_t> effective;
    for (int cap : caps) {
      if (cap < 1) continue;
      const int64_t used = threads_for(shape_, cap);
      if (std::find(effective.begin(), effective.end(), used) != effective.end()) continue;
      effective.push_back(used);
      pairs_.push_back(Pair{k, cap, {}, false});
    }
  }

  signature_ = signature_of(shape_, num_threads_, active);
  chosen_ = 0;
  challenger_ = -1;
  cursor_ = 0;
  overhead_s_ = planning_s_ = 0;
  timed_calls_ = 0;
  from_wisdom_ = false;
  warmed_up_ = false;
  const bool worth_planning = mode_ == PlannerMode::kMeasure && pairs_.size() > 1 && call_bytes(shape_) >= kPlanMinBytes;
  phase_ = worth_planning ? Phase::kPlanning : Phase::kHeuristic;
  if (!worth_planning) return;

  std::lock_guard<std::mutex> lock(wisdom().mutex);
  const auto found = wisdom().table.find(signature_);
  if (found == wisdom().table.end()) return;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    // A name this build no longer offers (or another cap) is ignored: plan afresh.
    if (found->second.kernel == pairs_[i].kernel.name && found->second.max_threads == pairs_[i].max_threads) {
      chosen_ = int(i);
      phase_ = Phase::kDecided;
      from_wisdom_ = true;
      return;
    }
  }
}

KernelPlanner::Ticket KernelPlanner::next() {
  std::lock_guard<std::mutex> lock(mutex_);
  reset_if_settings_changed();
  const auto run = [&](int i, bool timed) {
    return Ticket{pairs_[i].kernel.fn, pairs_[i].max_threads, timed ? i : -1, epoch_};
  };
  if (phase_ != Phase::kPlanning) return run(chosen_, false);
  // The first call of a plan is cold (new pages, the pool's threads being created,
  // caches of other work): timing it would drop the pair it ran for a cost not its own.
  if (!warmed_up_) {
    warmed_up_ = true;
    return run(0, false);
  }

  if (overhead_s_ > kMaxOverheadSeconds || timed_calls_ >= int64_t(pairs_.size()) * kPlanRounds * kMaxCallsPerPairRound) {
    decide();
    return run(chosen_, false);
  }
  // Over budget: the best pair so far runs (still timed: more samples, more budget).
  if (overhead_s_ > kBudgetFraction * planning_s_ + kBudgetAllowanceSeconds) return run(chosen_, true);
  // Round-robin over the pairs still in the race; the fewest-timed first keeps rounds interleaved.
  size_t fewest = SIZE_MAX;
  for (const auto& p : pairs_)
    if (!p.dropped) fewest = std::min(fewest, p.times.size());
  if (fewest >= size_t(kPlanRounds)) {
    if (challenger_ < 0) {
      const int best = best_pair();
      if (best == 0 || pairs_[0].dropped) {
        decide();
        return run(chosen_, false);
      }
      challenger_ = best;
    }
    const Pair& heuristic = pairs_[0];
    const Pair& challenger = pairs_[challenger_];
    const size_t confirmed = size_t(kPlanRounds + kConfirmRounds);
    if (heuristic.dropped || challenger.dropped ||
        (heuristic.times.size() >= confirmed && challenger.times.size() >= confirmed)) {
      decide();
      return run(chosen_, false);
    }
    return run(heuristic.times.size() <= challenger.times.size() ? 0 : challenger_, true);
  }
  for (size_t step = 0; step < pairs_.size(); ++step) {
    const size_t i = (cursor_ + step) % pairs_.size();
    if (!pairs_[i].dropped && pairs_[i].times.size() == fewest) {
      cursor_ = i + 1;
      return run(int(i), true);
    }
  }
  return run(chosen_, false);  // unreachable: some pair has the fewest times
}

void KernelPlanner::record(const Ticket& ticket, double seconds) {
  g_timed_calls.fetch_add(1);
  std::lock_guard<std::mutex> lock(mutex_);
  if (ticket.epoch != epoch_ || phase_ != Phase::kPlanning) return;
  Pair& pair = pairs_[ticket.pair];
  if (fake_timings().active.load()) {
    std::lock_guard<std::mutex> fake_lock(fake_timings().mutex);
    const auto& fake = fake_timings().seconds;
    auto it = fake.find(pair_label(pair.kernel.name, pair.max_threads));
    if (it == fake.end()) it = fake.find(pair.kernel.name);
    seconds = it == fake.end() ? 1.0 : it->second;
  }
  pair.times.push_back(seconds);
  ++timed_calls_;
  planning_s_ += seconds;
  if (!pairs_[0].times.empty()) overhead_s_ += seconds - median(pairs_[0].times);

  double best = INFINITY;
  for (const auto& p : pairs_)
    if (!p.dropped && !p.times.empty()) best = std::min(best, *std::min_element(p.times.begin(), p.times.end()));
  for (auto& p : pairs_)
    if (!p.dropped && !p.times.empty() && *std::min_element(p.times.begin(), p.times.end()) > kDropRatio * best)
      p.dropped = true;
  chosen_ = best_pair();
}

// The lowest median among the pairs still in the race, the heuristic's pair (the
// first) judged at kSwitchMargin of its median; ties go to the earlier pair, so equal
// timings choose the same pair every time.
int KernelPlanner::best_pair() const {
  int best = -1;
  double best_median = INFINITY;
  for (size_t i = 0; i < pairs_.size(); ++i) {
    if (pairs_[i].dropped || pairs_[i].times.empty()) continue;
    const double m = median(pairs_[i].times) * (i == 0 ? kSwitchMargin : 1.0);
    if (m < best_median) best = int(i), best_median = m;
  }
  return best < 0 ? 0 : best;
}

void KernelPlanner::decide() {
  chosen_ = best_pair();
  // After a confirmation the choice is between the two pairs it timed: another pair,
  // timed only in the rounds, does not win on the challenger's weaker figures.
  if (challenger_ > 0 && !pairs_[0].dropped && !pairs_[challenger_].dropped)
    chosen_ = median(pairs_[challenger_].times) < kSwitchMargin * median(pairs_[0].times) ? challenger_ : 0;
  phase_ = Phase::kDecided;
  Decision d;
  d.kernel = pairs_[chosen_].kernel.name;
  d.max_threads = pairs_[chosen_].max_threads;
  d.median_s = pairs_[chosen_].times.empty() ? 0 : median(pairs_[chosen_].times);
  d.heuristic_s = pairs_[0].times.empty() ? 0 : median(pairs_[0].times);
  d.planning_calls = timed_calls_;
  d.overhead_s = overhead_s_;
  std::lock_guard<std::mutex> lock(wisdom().mutex);
  wisdom().table[signature_] = d;
}

KernelPlanner::State KernelPlanner::state() {
  std::lock_guard<std::mutex> lock(mutex_);
  reset_if_settings_changed();
  State s;
  s.phase = phase_ == Phase::kPlanning ? "planning" : phase_ == Phase::kDecided ? "decided" : "heuristic";
  if (phase_ == Phase::kDecided) s.source = from_wisdom_ ? "wisdom" : "measured";
  s.kernel = pairs_[chosen_].kernel.name;
  s.max_threads = pairs_[chosen_].max_threads;
  s.signature = signature_;
  s.timed_calls = timed_calls_;
  for (const auto& p : pairs_) s.pairs.push_back(pair_label(p.kernel.name, p.max_threads));
  return s;
}

}  // namespace fm::cpu
