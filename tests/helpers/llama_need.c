/* llama_need.c - the pinned llama.cpp or a skipped test (see llama_need.h). */
#include "llama_need.h"
#include "llama_quantize.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

struct mq_llama_cpp *llama_cpp_or_skip(void)
{
    static struct mq_llama_cpp *lc;
    static char why[1400];
    if (!lc) lc = mq_llama_cpp_open(why, sizeof why);
    if (lc) return lc;
    if (getenv("CI")) cr_assert_fail("llama.cpp required when CI is set: %s", why);
    fprintf(stderr, "SKIP llama.cpp test: %s (set CI to make this a failure)\n", why);
    cr_skip_test("llama.cpp test skipped: %s", why);
    return NULL;
}

const struct mq_ggml *llama_quantize_or_skip(void)
{
    static struct mq_ggml g;
    static int state; /* 0 not tried, 1 open, -1 missing */
    static char why[4096];
    if (!state) state = mq_ggml_open(&g, why, sizeof why) && mq_llama_quantize_open(why, sizeof why) ? 1 : -1;
    if (state > 0) return &g;
    if (getenv("CI")) cr_assert_fail("llama.cpp libraries required when CI is set: %s", why);
    cr_skip_test("llama-quantize comparison skipped: %s", why);
    return NULL;
}
