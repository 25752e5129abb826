/* user_convert.c - what a user of the installed libmodelq writes: list the tensors of INPUT through
** the public accessors (the model is opaque), then convert INPUT to a q8_0 GGUF.
** Built by tests/link/run.sh against the installed tree through pkg-config only. Prints one line
** "tensor NAME DTYPE [d0,d1,...] NUMEL NBYTES" per tensor (what run.sh compares with the CLI's
** inspect --json), then a summary line. */
#include <modelq/modelq.h>
#include <inttypes.h>
#include <stdio.h>

static int list_tensors(const char *path)
{
    struct mq_model *m = NULL;
    struct mq_error err;
    mq_error_clear(&err);
    if (mq_model_open(path, &m, &err) != MQ_OK) {
        fprintf(stderr, "error: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < mq_model_n_tensors(m); i++) {
        const struct mq_tensor *t = mq_model_tensor(m, i);
        const uint64_t *shape = mq_tensor_shape(t);
        printf("tensor %s %s [", mq_tensor_name(t), mq_dtype_name(mq_tensor_dtype(t)));
        for (uint32_t d = 0; d < mq_tensor_ndim(t); d++) printf("%s%" PRIu64, d ? "," : "", shape[d]);
        printf("] %" PRIu64 " %" PRIu64 "\n", mq_tensor_numel(t), mq_tensor_nbytes(t));
    }
    const struct mq_config *c = mq_model_config(m);
    printf("model %s: %s, %zu file(s), %zu tensors, config %s (%s, %" PRIu64 " layers)\n", mq_model_input_path(m),
           mq_model_format(m), mq_model_n_files(m), mq_model_n_tensors(m), c->present ? "yes" : "no",
           c->architecture, c->num_layers);
    mq_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    if (list_tensors(argv[1]) != 0) return 1;
    struct mq_convert_options o;
    mq_convert_options_init(&o);
    o.input = argv[1];
    o.output = argv[2];
    o.type = "q8_0";
    struct mq_convert_report rep;
    struct mq_error err;
    mq_error_clear(&err);
    enum mq_status s = mq_convert(&o, &rep, &err);
    if (s != MQ_OK) fprintf(stderr, "error: %s\n", err.msg);
    else printf("libmodelq %s (header %s): %zu tensors\n", mq_version_string(), MQ_VERSION_STRING, rep.n_tensors);
    mq_convert_report_free(&rep);
    return s == MQ_OK ? 0 : 1;
}
