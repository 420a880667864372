// Microbench of the float32 confusion predict kernels (ns per row, single thread,
// in-cache rows), with and without an emulation of tally_private's bin + count.
#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>
#include <algorithm>
#include "cpu/confusion.h"
#include "cpu/confusion_tally.h"
#include "semantics/argmax_rule.h"
#include "semantics/dtypes.h"
#include "semantics/logits.h"
namespace {
#include "cpu/confusion_kernels_portable.h"
#include "cpu/confusion_argmax_avx2.h"
}
int main(int argc, char** argv) {
  const int64_t C = atoi(argv[1]);
  const int64_t N = argc > 2 ? atoi(argv[2]) : 12000;
  std::vector<float> y(N * C);
  std::vector<int32_t> t(N);
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(0, 1);
  for (auto& v : y) v = u(g);
  fm::ConfusionCall call{};
  call.a.y = y.data(); call.a.t = t.data(); call.a.N = N; call.a.C = C; call.a.M = 1;
  call.a.ys_n = C; call.a.ys_c = 1; call.a.ys_m = 1; call.a.ts_n = 1; call.a.ts_m = 1;
  call.a.y_code = fm::kF32; call.a.t_code = 0; call.pred_code = -1;
  fm::cpu::PredictFn f = select_predict_with_avx2_rows(call);
  int64_t pred[256];
  // labels = argmax
  for (int64_t r = 0; r < N; r += 256) {
    int w = int(std::min<int64_t>(256, N - r));
    f(call, {r, 0}, w, pred);
    for (int i = 0; i < w; ++i) t[r + i] = int32_t(pred[i]);
  }
  std::vector<uint32_t> counts(C * C + 1);
  fm::cpu::PrivateTables tables{counts.data(), C * C + 1, 0};
  fm::cpu::IgnoreAs<int32_t> ign{false, 0};
  uint32_t bins[256];
  double best_p = 1e30, best_t = 1e30;
  int64_t sink = 0;
  for (int rep = 0; rep < 40; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < N; r += 256) {
      int w = int(std::min<int64_t>(256, N - r));
      f(call, {r, 0}, w, pred);
      sink += pred[w - 1];
    }
    auto t1 = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < N; r += 256) {
      int w = int(std::min<int64_t>(256, N - r));
      f(call, {r, 0}, w, pred);
      sink += fm::cpu::bin_block<false>(t.data() + r, 1, (const int64_t*)pred, 1, w, C, ign, bins);
      fm::cpu::count_bins(bins, w, tables);
    }
    auto t2 = std::chrono::steady_clock::now();
    best_p = std::min(best_p, std::chrono::duration<double>(t1 - t0).count());
    best_t = std::min(best_t, std::chrono::duration<double>(t2 - t1).count());
  }
  printf("C=%4ld predict %7.2f ns/row  predict+tally %7.2f ns/row (%ld)\n", (long)C, best_p / N * 1e9, best_t / N * 1e9, (long)(sink & 1));
}
