/* user_convert.c - what a user of the installed libmodelq writes: convert INPUT to a q8_0 GGUF.
** Built by tests/link/run.sh against the installed tree through pkg-config only. */
#include <modelq/modelq.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    struct mq_convert_options o;
    mq_convert_options_default(&o);
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
