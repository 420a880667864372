// The measuring planner of the CPU accuracy kernels: one plan (a call shape) times
// its candidate (kernel, thread cap) pairs on the caller's own calls, interleaved,
// and keeps the fastest; decisions are shared process-wide by call signature.
//
// Why measure: no fixed rule is best on every CPU (AVX-512 loses to AVX2 on some
// Xeons for long rows, a second thread helps some shapes only), and a call after
// other work behaves unlike a call in a synthetic loop, so we time the real calls.
// Every candidate gives the same counts, so planning never changes a result.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cpu/accuracy.h"
#include "semantics/accuracy_call.h"

namespace fm::cpu {

enum class PlannerMode { kHeuristic, kMeasure };

// Process-wide mode: FUSEDMETRICS_PLANNER=heuristic|measure at first use (anything
// else: the default, measure), then set_planner_mode().
PlannerMode planner_mode();
void set_planner_mode(PlannerMode mode);

// Calls reading fewer bytes keep the heuristic: there timing noise exceeds the
// differences, and the size already fixes the thread count.
constexpr double kPlanMinBytes = double(1 << 20);
// Each pair is timed this many times; the lowest median wins.
constexpr int kPlanRounds = 3;

// A decision, as the wisdom table keeps it.
struct Decision {
  std::string kernel;       // a candidate's name, "<isa>/<kernel>"
  int max_threads = 0;      // the thread cap it ran with
  double median_s = 0;      // its median time (information only)
  double heuristic_s = 0;   // the heuristic pair's median time (information only)
  int64_t planning_calls = 0;
  double overhead_s = 0;    // time beyond what the heuristic pair would have taken
};

// The wisdom table: signature -> decision. Safe from any thread.
std::map<std::string, Decision> planner_wisdom();
// Adds (replacing) decisions; a kernel name no plan offers is ignored when looked up.
void load_planner_wisdom(const std::map<std::string, Decision>& decisions);
void clear_planner_wisdom();

// Tests: replace every measured time by a fixed one. Keys "<name>@<cap>" (one pair)
// or "<name>" (every cap of that kernel); a pair without a key counts 1 s. Empty: measure.
void set_fake_timings(const std::map<std::string, double>& seconds);
// Calls timed by any planner since the process started (tests: heuristic mode times none).
int64_t planner_timed_calls();

// The planner of one call shape. Thread-safe: count() may run in several threads at once.
class KernelPlanner {
 public:
  explicit KernelPlanner(const AccuracyCall& shape);

  // Counts a call of this shape with the current choice, timing it while planning.
  Counts count(const AccuracyCall& call);

  struct State {
    std::string phase;      // "heuristic", "planning" or "decided"
    std::string source;     // for "decided": "measured" or "wisdom"
    std::string kernel;     // what the next call runs (while planning: the best so far)
    int max_threads = 0;    // its cap (0: the thread setting)
    std::string signature;
    int64_t timed_calls = 0;
    std::vector<std::string> pairs;  // every "<name>@<cap>" considered
  };
  State state();

 private:
  struct Pair {
    KernelCandidate kernel;
    int max_threads;  // 0: the thread setting
    std::vector<double> times;
    bool dropped = false;
  };
  struct Ticket {
    CountRowsFn fn;
    int max_threads;
    int pair;        // -1: not timed
    uint64_t epoch;  // a ticket from before a rebuild is not recorded
  };

  Ticket next();
  void record(const Ticket& ticket, double seconds);
  void reset_if_settings_changed();
  void rebuild();
  void decide();
  int best_pair() const;

  const AccuracyCall shape_;
  std::mutex mutex_;
  // What the state below was built for: it is rebuilt when any of these moves.
  uint64_t isa_generation_ = ~uint64_t(0);
  int num_threads_ = -1;
  PlannerMode mode_ = PlannerMode::kHeuristic;
  uint64_t wisdom_generation_ = ~uint64_t(0);

  std::string signature_;
  std::vector<Pair> pairs_;  // the heuristic pair first
  enum class Phase { kHeuristic, kPlanning, kDecided } phase_ = Phase::kHeuristic;
  bool from_wisdom_ = false;
  bool warmed_up_ = false;  // the first planning call runs untimed (see next())
  uint64_t epoch_ = 0;
  int chosen_ = 0;           // the pair count() runs when not exploring
  int challenger_ = -1;      // the pair being confirmed against the heuristic's, or -1
  size_t cursor_ = 0;        // round-robin position
  double overhead_s_ = 0, planning_s_ = 0;
  int64_t timed_calls_ = 0;
};

}  // namespace fm::cpu
