/* fref_folder.c - the reference decoder bound to a checkpoint folder (fref_folder.h). */
#include "fref_folder.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "bf16_read.h"
#include "modelq/model.h"
#include "run_cmd.h"

/* fref_get_fn over an opened checkpoint: BF16 tensors as floats, after checking the shape. */
static const float *get_tensor(void *user, const char *name, int rows, int cols, bool optional)
{
    struct fref_folder *R = user;
    long t = mq_model_find(R->m, name);
    if (t < 0) {
        cr_assert(optional, "tensor %s missing", name);
        return NULL;
    }
    const struct mq_tensor *ts = mq_model_tensor(R->m, (size_t)t);
    const uint64_t *shape = mq_tensor_shape(ts);
    cr_assert_eq(mq_tensor_dtype(ts), MQ_DTYPE_BF16, "%s is not BF16", name);
    cr_assert_eq(mq_tensor_ndim(ts), cols ? 2u : 1u, "%s has %u dims", name, mq_tensor_ndim(ts));
    cr_assert_eq(shape[0], (uint64_t)rows, "%s shape[0] %llu, expected %d", name, (unsigned long long)shape[0], rows);
    if (cols) cr_assert_eq(shape[1], (uint64_t)cols, "%s shape[1]", name);
    cr_assert_lt(R->n_owned, FREF_FOLDER_MAX_TENSORS);
    float *v = bf16_read_f32(R->m, (size_t)t, (uint64_t)rows * (uint64_t)(cols ? cols : 1));
    R->owned[R->n_owned++] = v;
    return v;
}

void fref_folder_load(const char *dir, struct fref_folder *R)
{
    memset(R, 0, sizeof *R);
    struct mq_error err;
    mq_error_clear(&err);
    cr_assert_eq(mq_model_open(dir, &R->m, &err), MQ_OK, "%s: %s", dir, err.msg);
    char path[600], why[256];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *j = load_json(path);
    cr_assert_eq(fref_bind(j, get_tensor, R, &R->M, why, sizeof why), 0, "%s: %s", dir, why);
    cJSON_Delete(j);
}

void fref_folder_free(struct fref_folder *R)
{
    for (int i = 0; i < R->n_owned; i++) free(R->owned[i]);
    mq_model_free(R->m);
}
