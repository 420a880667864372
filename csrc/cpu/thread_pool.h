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

// Number of threads a call may use (the caller's thread included). Default: the
// CPUs this process may run on, or FUSEDMETRICS_NUM_THREADS if set.
int get_num_threads();
void set_num_threads(int n);

// Runs task(i) for i in [0, n_tasks) on up to n_tasks threads, the caller's among
// them, and returns when all are done. Calls from several threads are serialised.
// task must not throw (a throw on a worker thread would end the process).
void parallel_for(int n_tasks, const std::function<void(int)>& task);

}  // namespace fm::cpu
