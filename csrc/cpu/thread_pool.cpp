#include "cpu/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sched.h>
#define FM_HAVE_PTHREAD_ATFORK 1
#endif

namespace fm::cpu {
namespace {

int default_num_threads() {
  if (const char* env = std::getenv("FUSEDMETRICS_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n < kMaxThreads ? n : kMaxThreads;
  }
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n < kMaxThreads ? n : kMaxThreads;
  }
#endif
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw < unsigned(kMaxThreads) ? int(hw) : kMaxThreads;
}

class Pool {
 public:
  explicit Pool(int workers) {
    try {
      for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
    } catch (const std::exception& e) {
      // The members would be destroyed with workers still waiting on wake_ (that
      // destructor then waits forever): stop and join the started ones first.
      const std::size_t started = threads_.size();
      stop_and_join();
      throw std::runtime_error("fusedmetrics: could not start " + std::to_string(workers) +
                               " worker threads (started " + std::to_string(started) + "): " + e.what() +
                               "; call fusedmetrics.set_num_threads() with fewer threads");
    }
#if defined(__linux__)
    have_allowed_ = sched_getaffinity(0, sizeof allowed_, &allowed_) == 0 && CPU_COUNT(&allowed_) > 1;
#endif
  }
  ~Pool() { stop_and_join(); }
  int workers() const { return int(threads_.size()); }

  void run(int n_tasks, const std::function<void(int)>& task) {
    keep_workers_off_caller_cpu();
    uint32_t generation;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      n_tasks_ = n_tasks;
      pending_ = n_tasks;
      generation = ++generation_;
      claims_.store(uint64_t(generation) << 32);
    }
    wake_.notify_all();
    drain(generation, &task, n_tasks);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  // A woken worker tends to be placed on the waker's CPU; it then waits while the
  // caller runs its own share, and the call takes as long as on one thread (seen
  // on VMs). So workers may run on any allowed CPU but the caller's. The caller's
  // CPU rarely changes, so this costs a syscall per worker only when it does.
  void keep_workers_off_caller_cpu() {
#if defined(__linux__)
    if (!have_allowed_) return;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu == caller_cpu_ || !CPU_ISSET(cpu, &allowed_)) return;
    caller_cpu_ = cpu;
    cpu_set_t others = allowed_;
    CPU_CLR(cpu, &others);
    for (auto& t : threads_) pthread_setaffinity_np(t.native_handle(), sizeof others, &others);
#endif
  }

  // Takes the next task index of call `generation`. The index and the call share one
  // atomic word, so a worker that wakes late (its call already over, the next one
  // started) claims nothing of the next call: it would run it with the old call's
  // task and, running an index twice, let run() return while a task still runs.
  bool claim(uint32_t generation, int n_tasks, int& index) {
    uint64_t c = claims_.load();
    do {
      if (uint32_t(c >> 32) != generation || int(uint32_t(c)) >= n_tasks) return false;
    } while (!claims_.compare_exchange_weak(c, c + 1));
    index = int(uint32_t(c));
    return true;
  }
  void drain(uint32_t generation, const std::function<void(int)>* task, int n_tasks) {
    int finished = 0;
    for (int i = 0; claim(generation, n_tasks, i); ++finished) (*task)(i);
    if (finished) {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_ -= finished;
      if (pending_ == 0) done_.notify_all();
    }
  }
  void stop_and_join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  void work() {
    uint32_t seen = 0;
    for (;;) {
      const std::function<void(int)>* task;
      int n_tasks;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        task = task_;  // null if that call is already over; claim() then fails
        n_tasks = n_tasks_;
      }
      drain(seen, task, n_tasks);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* task_ = nullptr;
  int n_tasks_ = 0;
  int pending_ = 0;
  uint32_t generation_ = 0;
  std::atomic<uint64_t> claims_{0};  // (generation << 32) | next task index
#if defined(__linux__)
  cpu_set_t allowed_;
  bool have_allowed_ = false;
  int caller_cpu_ = -1;
#endif
  bool stopping_ = false;
};

std::mutex g_call_mutex;  // one parallel call at a time
Pool* g_pool = nullptr;    // created on first use; deliberately never destroyed at exit
// Atomic, not under g_call_mutex: reading or setting it must not wait for a
// running call (that call holds the mutex for its whole length). 0: not set yet.
std::atomic<int> g_num_threads{0};

int current_num_threads() {
  int n = g_num_threads.load();
  if (n > 0) return n;
  int fresh = default_num_threads();
  // A concurrent set_num_threads wins: keep its value.
  return g_num_threads.compare_exchange_strong(n, fresh) ? fresh : n;
}

#if defined(FM_HAVE_PTHREAD_ATFORK)
// In a forked child the workers do not exist: forget the pool (leaking it, as its
// threads and mutexes are unusable there) and start afresh on first use.
void forget_pool_in_child() {
  g_pool = nullptr;
  new (&g_call_mutex) std::mutex();
}
#endif

Pool& pool_with(int workers) {
  static bool registered = false;
  if (!registered) {
#if defined(FM_HAVE_PTHREAD_ATFORK)
    pthread_atfork(nullptr, nullptr, forget_pool_in_child);
#endif
    registered = true;
  }
  if (g_pool && g_pool->workers() != workers) {
    delete g_pool;
    g_pool = nullptr;
  }
  if (!g_pool) g_pool = new Pool(workers);
  return *g_pool;
}

}  // namespace

int get_num_threads() { return current_num_threads(); }

void set_num_threads(int n) {
  if (n > kMaxThreads) {
    throw std::invalid_argument("set_num_threads: n must be at most " + std::to_string(kMaxThreads) + "; got " +
                                std::to_string(n));
  }
  g_num_threads.store(n > 0 ? n : default_num_threads());
}

void parallel_for(int n_tasks, const std::function<void(int)>& task) {
  if (n_tasks <= 1) {
    if (n_tasks == 1) task(0);
    return;
  }
  std::lock_guard<std::mutex> lock(g_call_mutex);
  pool_with(current_num_threads() - 1).run(n_tasks, task);
}

}  // namespace fm::cpu
