// Build and runtime facts: compiler, CPU instruction sets, threads.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cpu/cpu_features.h"
#include "cpu/thread_pool.h"

namespace py = pybind11;

void bind_info(py::module_& m) {
  m.def("build_info", [] {
    py::dict info;
    info["compiler"] = FM_CXX_COMPILER;
    info["build_type"] = FM_BUILD_TYPE;
    info["cpu_isas_compiled"] = FM_CPU_ISAS;
#ifdef FM_AVX512_EMULATED
    info["avx512_emulated"] = true;  // a test build: "avx512" is SIMDe's emulation, not the hardware's
#else
    info["avx512_emulated"] = false;
#endif
    return info;
  });
  m.def("usable_isas", &fm::cpu::usable_isas, "ISA builds of the CPU kernels that this CPU can run, best last.");
  m.def("active_isa", &fm::cpu::active_isa, "The ISA build the CPU kernels use now.");
  m.def("set_active_isa", &fm::cpu::set_active_isa, py::arg("isa"),
        "Selects an ISA build (for tests and benchmarks); returns False if it is not usable here.");
  m.def("get_num_threads", &fm::cpu::get_num_threads);
  m.def("set_num_threads", &fm::cpu::set_num_threads, py::arg("n"));
}
