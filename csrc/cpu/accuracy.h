// The CPU accuracy kernels: per-ISA kernel selection and the threaded call.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "semantics/accuracy_call.h"

namespace fm::cpu {

struct Counts {
  int64_t correct = 0;
  int64_t total = 0;
};

// Counts rows [row_begin, row_end) of a call.
using CountRowsFn = Counts (*)(const AccuracyCall&, int64_t row_begin, int64_t row_end);

// One kernel that can count a call, named "<isa>/<kernel>" for plans, logs and tests.
struct KernelCandidate {
  const char* name;
  CountRowsFn fn;
};
using Candidates = std::vector<KernelCandidate>;

// Appends a candidate. Defined in the baseline translation unit, and the ISA units
// call it instead of push_back: a vector member they instantiated would be an
// inline function compiled with their flags, which the linker may merge into the
// one copy every caller uses (AVX-512 code run on an AVX2-only CPU).
void add_candidate(Candidates& found, const char* name, CountRowsFn fn);

// Each ISA build's kernels that can count a call, the build's heuristic choice
// first (never empty: the portable kernel is always last). The list depends on the
// call's codes, sizes and strides only, never on its pointers, so a plan makes it once.
Candidates kernel_candidates_baseline(const AccuracyCall&);
#if defined(FM_HAVE_X86_KERNELS)
Candidates kernel_candidates_avx2(const AccuracyCall&);
Candidates kernel_candidates_avx512(const AccuracyCall&);
// The AVX-512 kernel for rows of 2, 4 or 8 classes stored back to back, or nullptr.
CountRowsFn few_class_kernel_avx512(const AccuracyCall&);
#endif

// The candidates of one ISA build ("baseline", "avx2", "avx512"); empty if it is not compiled in.
Candidates kernel_candidates(const std::string& isa, const AccuracyCall&);

// The candidates of every ISA build this CPU can run, best build last (as usable_isas()).
Candidates usable_candidates(const AccuracyCall&);

// The bytes a call reads (in double: broadcast, zero-stride inputs can claim more than int64 holds).
double call_bytes(const AccuracyCall& call);

// The threads count_accuracy(call, kernel, max_threads) uses: the thread setting, capped
// by max_threads when it is > 0, fewer for small calls (a planner dedupes caps with it).
int64_t threads_for(const AccuracyCall& call, int max_threads);

// The whole call with a selected kernel: splits the rows over the threads (at most
// max_threads of them when it is > 0; fewer for small calls).
Counts count_accuracy(const AccuracyCall& call, CountRowsFn kernel, int max_threads = 0);

}  // namespace fm::cpu
