/* convert_checked.c - mq_convert from a test (see convert_checked.h). */
#include "convert_checked.h"

#include <criterion/criterion.h>

void tc_convert(const struct tc_convert *c, struct mq_convert_report *rep)
{
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    o.input = c->input;
    o.output = c->output;
    o.type = c->type;
    o.base = c->base;
    o.threads = 2;
    o.debug_qk_permute = c->debug_qk;
    o.loras = c->loras;
    o.n_loras = c->n_loras;
    struct mq_convert_report own;
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_convert(&o, rep ? rep : &own, &err), MQ_OK, "convert %s to %s: %s", c->input, c->type, err.msg);
    if (!rep) mq_convert_report_free(&own);
}
