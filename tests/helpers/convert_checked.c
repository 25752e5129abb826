/* convert_checked.c - mq_convert from a test (see convert_checked.h). */
#include "convert_checked.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#include "modelq/model.h"

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

uint8_t *tc_tensor_data(const char *path, size_t *len)
{
    struct mq_model *m;
    struct mq_error err;
    cr_assert_eq(mq_model_open(path, &m, &err), MQ_OK, "%s", err.msg);
    size_t total = 0;
    const size_t n = mq_model_n_tensors(m);
    for (size_t i = 0; i < n; i++) total += (size_t)mq_tensor_nbytes(mq_model_tensor(m, i));
    uint8_t *b = malloc(total ? total : 1);
    cr_assert_not_null(b);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const size_t nb = (size_t)mq_tensor_nbytes(mq_model_tensor(m, i));
        cr_assert_eq(mq_model_read(m, i, 0, b + off, nb, &err), MQ_OK, "%s", err.msg);
        off += nb;
    }
    mq_model_free(m);
    *len = total;
    return b;
}
