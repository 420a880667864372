// A small persistent pool of worker threads for the CPU kernels.
//
// Why not OpenMP: a wheel that bundles libgomp can end up with two OpenMP runtimes
// beside torch or MKL, libgomp hangs children after fork, and it spin-waits on
// shared cores. Creating a std::thread per call costs ~40 us. So: threads are made
// once, sleep on a condition variable between calls, and a child process after
// fork() starts with a fresh (empty) pool.
#pragma once
#include <functional>

namespace fm::cpu {

// The most threads a call may use. Far beyond any useful count (the kernels are
// memory-bound), and low enough that a typo cannot ask for a million threads.
constexpr int kMaxThreads = 1024;

// Number of threads a call may use (the caller's thread included). Default: the
// CPUs this process may run on, or FUSEDMETRICS_NUM_THREADS if set (clamped to
// [1, kMaxThreads]). Both read and write an atomic: they never wait for a running
// parallel_for, and may be called from any thread at any time.
int get_num_threads();
// n <= 0 restores the default; n > kMaxThreads throws std::invalid_argument.
// Takes effect at the next parallel_for.
void set_num_threads(int n);

// Runs task(i) for i in [0, n_tasks) on up to n_tasks threads, the caller's among
// them, and returns when all are done. Calls from several threads are serialised.
// task must not throw (a throw on a worker thread would end the process).
// If the worker threads cannot be created (e.g. under a memory limit), throws
// std::runtime_error before running anything; the next call tries again.
void parallel_for(int n_tasks, const std::function<void(int)>& task);

}  // namespace fm::cpu
