/* testing.c - the process-wide test hooks (modelq/testing.h). */
#include "modelq/testing.h"

#include <string.h>

static struct mq_test_hooks hooks;

void mq_testing_set_hooks(const struct mq_test_hooks *h)
{
    if (h) hooks = *h;
    else memset(&hooks, 0, sizeof hooks);
}

const struct mq_test_hooks *mq_testing_hooks(void) { return &hooks; }
