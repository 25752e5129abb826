/* cmd_report.c - `modelq report INPUT --type T[,T2...] -o FILE.html`: the HTML quantization report. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "modelq/report.h"
#include "modelq/target.h"

static const char report_short_with_value[] = "jto";

static const char *const report_help =
    "usage: modelq report INPUT --type TYPE[,TYPE...] -o FILE.html [options]\n"
    "\n"
    "Writes one self-contained HTML file (inline SVG and CSS: no script, nothing fetched; readable offline\n"
    "and printable) showing what each TYPE does to this model's own weights:\n"
    "  1. the staircase: a fixed-seed sample of one tensor's weights against their dequantized values,\n"
    "     divided by their block's absmax, with the codec's levels (INT8 k/127, Q4_0's 16 steps, NF4's 16\n"
    "     normal quantiles);\n"
    "  2. the histogram of dequantized - x over every element of that tensor;\n"
    "  3. relative RMSE of every quantized tensor as a heat map, layers x tensors, one panel per type,\n"
    "     the tensors that got another codec (Q6_K output, Q5_K attn_v ...) outlined;\n"
    "  4. bytes per tensor role with bits per weight, and estimate's memory (weights + KV cache at --ctx +\n"
    "     overhead) against 8/12/16/24/48/80 GiB GPUs;\n"
    "  5. the numbers under each picture (those of `convert --report` JSON and `estimate --json`).\n"
    "Each type is one streaming dry run (`convert --dry-run --stats`): memory stays bounded.\n"
    "\n"
    "  -t, --type T[,T...]      convert types to compare (repeatable; at most 16), e.g. q8_0,q4_0,nf4\n"
    "  -o, --output FILE.html   the report; written through a temporary file and renamed: complete or not\n"
    "                           at all. Never an input file, a folder, a FIFO or a device\n"
    "  --plot-tensor NAME       the staircase's tensor: an output name (blk.0.attn_v.weight) or the input's\n"
    "                           name (default: the first attention query matrix, or a fused QKV)\n"
    "  --ctx N                  KV cache context of the memory bars (default 4096)\n"
    "  --sample N               staircase points per type (default 2000, at most 100000)\n"
    "  -j, --threads N          worker threads (default: all cores)\n"
    "  --quiet                  no progress line\n"
    "Also: `modelq convert ... --report-html FILE.html` writes the same report for the one type converted.\n"
    "Exit codes: 0 ok, 1 internal, 2 usage, 3 bad input data, 4 I/O (disk full ...), 5 out of memory.\n";

static void on_warning(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "modelq: warning: %s\n", msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    int *last = ctx;
    if (total == 0) return;
    int pct = (int)(done * 100 / total);
    if (pct == *last) return;
    *last = pct;
    fprintf(stderr, "\rmeasuring %3d%%", pct);
    if (pct == 100) fputc('\n', stderr);
    fflush(stderr);
}

int cmd_report(int argc, char **argv)
{
    struct mq_report_options o;
    mq_report_options_default(&o);
    const char *out = NULL;
    char *types_buf[MQ_REPORT_MAX_TYPES];
    const char *types[MQ_REPORT_MAX_TYPES];
    size_t n_types = 0;
    bool quiet = false;
    int rc = EXIT_OK;
    char opt[64];
    for (int i = 1; i < argc && rc == EXIT_OK; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool attached = cli_split_option(a, opt, sizeof opt, &val, report_short_with_value), consumed = false;
        if (attached) a = opt;
#define NEED_VALUE() \
    do { \
        if (!val) { rc = cli_usage_error("report", "%s needs a value", a); break; } \
        if (!attached) i++; \
        consumed = true; \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(report_help, stdout);
            for (size_t k = 0; k < n_types; k++) free(types_buf[k]);
            return EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            NEED_VALUE();
            if (rc == EXIT_OK) out = val;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--type") == 0) {
            NEED_VALUE();
            /* a comma-separated list; every name checked here, before any data is read */
            for (const char *p = val; rc == EXIT_OK && p && *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                enum mq_target tg;
                char name[64];
                if (len == 0 || len >= sizeof name) {
                    rc = cli_usage_error("report", "--type needs TYPE[,TYPE...], got '%s'", val);
                    break;
                }
                memcpy(name, p, len);
                name[len] = '\0';
                if (!mq_target_for_convert(name, &tg)) {
                    rc = cli_usage_error("report", "unknown --type '%s' (known: %s)", name, mq_target_convert_names());
                } else if (n_types == MQ_REPORT_MAX_TYPES) {
                    rc = cli_usage_error("report", "at most %d types in one report", MQ_REPORT_MAX_TYPES);
                } else {
                    for (size_t k = 0; k < n_types; k++)
                        if (strcmp(mq_target_info(tg)->name, types[k]) == 0)
                            rc = cli_usage_error("report", "--type %s is given twice", name);
                    if (rc == EXIT_OK) {
                        types_buf[n_types] = strdup(mq_target_info(tg)->name);
                        if (!types_buf[n_types]) rc = EXIT_NOMEM;
                        else types[n_types] = types_buf[n_types], n_types++;
                    }
                }
                p = comma ? comma + 1 : NULL;
            }
        } else if (strcmp(a, "--plot-tensor") == 0) {
            NEED_VALUE();
            if (rc == EXIT_OK) o.plot_tensor = val;
        } else if (strcmp(a, "--ctx") == 0 || strcmp(a, "--sample") == 0 || strcmp(a, "-j") == 0 ||
                   strcmp(a, "--threads") == 0) {
            uint64_t n;
            NEED_VALUE();
            if (rc != EXIT_OK) break;
            if (strcmp(a, "--ctx") == 0) {
                if (!cli_parse_u64(val, &n) || n < 1 || n > (1ull << 32))
                    rc = cli_usage_error("report", "--ctx needs a token count of 1..4294967296");
                else o.ctx = n;
            } else if (strcmp(a, "--sample") == 0) {
                if (!cli_parse_u64(val, &n) || n < 1 || n > MQ_REPORT_MAX_SAMPLE)
                    rc = cli_usage_error("report", "--sample needs 1..%d points", MQ_REPORT_MAX_SAMPLE);
                else o.sample = (uint32_t)n;
            } else {
                if (!cli_parse_u64(val, &n) || n < 1 || n > 1024) rc = cli_usage_error("report", "%s needs 1..1024", a);
                else o.threads = (unsigned)n;
            }
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_usage_error("report", "unknown option '%s'", a);
        } else if (attached) {
            rc = cli_usage_error("report", "unknown option '%s'", argv[i]);
        } else if (o.input) {
            rc = cli_usage_error("report", "one INPUT only ('%s' and '%s')", o.input, a);
        } else {
            o.input = a;
        }
        if (rc == EXIT_OK && attached && !consumed) rc = cli_usage_error("report", "%s takes no value ('%s')", a, argv[i]);
#undef NEED_VALUE
    }
    if (rc == EXIT_OK && !o.input) rc = cli_usage_error("report", "missing INPUT");
    if (rc == EXIT_OK && n_types == 0) rc = cli_usage_error("report", "missing --type TYPE[,TYPE...]");
    if (rc == EXIT_OK && !out) rc = cli_usage_error("report", "missing -o FILE.html");
    if (rc == EXIT_OK) {
        int last = -1;
        o.warn = on_warning;
        if (!quiet && isatty(2)) {
            o.progress = on_progress;
            o.progress_ctx = &last;
        }
        mq_convert_install_signal_cleanup();
        struct mq_error err;
        mq_error_clear(&err);
        enum mq_status s = mq_report_html(&o, types, n_types, out, &err);
        if (s != MQ_OK) {
            if (last >= 0 && last < 100) fputc('\n', stderr);
            rc = cli_fail(&err);
        } else {
            printf("wrote %s: %zu type%s\n", out, n_types, n_types == 1 ? "" : "s");
        }
    }
    for (size_t k = 0; k < n_types; k++) free(types_buf[k]);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "modelq: error: cannot write to standard output\n");
        return EXIT_IO;
    }
    return rc;
}
