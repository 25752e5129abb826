/*
** cpu.c - run-time CPU feature detection for the fast kernels.
**
** Fast kernels are compiled per function with __attribute__((target("avx2,f16c"))) and chosen
** here once. mq_quant_set_simd(0) forces the portable path (the CLI does so for MODELQ_NO_SIMD),
** so tests and benchmarks can exercise both on one machine.
*/
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "modelq/quant.h"
#include "qcommon.h"

static int cpu_state = -1; /* -1 unknown, 0 portable, 1 avx2+f16c */
static int cpu_forced = -1; /* -1 none, else forced value (mq_quant_set_simd) */

static int cpu_detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2")) return 0; /* also covers OS YMM state support */
    /* F16C: CPUID.1:ECX bit 29 (clang 14's __builtin_cpu_supports does not know "f16c") */
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    return (c >> 29) & 1u;
#else
    return 0;
#endif
}

bool mq_cpu_avx2(void)
{
    if (cpu_forced >= 0) return cpu_forced;
    int s = __atomic_load_n(&cpu_state, __ATOMIC_RELAXED);
    if (s < 0) {
        s = cpu_detect();
        __atomic_store_n(&cpu_state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

const char *mq_quant_simd_name(void) { return mq_cpu_avx2() ? "avx2+f16c" : "portable"; }

void mq_quant_set_simd(int mode)
{
    if (mode < 0) {
        cpu_forced = -1;
    } else if (mode == 0) {
        cpu_forced = 0;
    } else {
        cpu_forced = cpu_detect();
    }
}
