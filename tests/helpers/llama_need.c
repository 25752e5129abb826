/* llama_need.c - the pinned llama.cpp or a skipped test (see llama_need.h). */
#include "llama_need.h"

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
