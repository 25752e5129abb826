/* cmd_convert.c - `modelq convert INPUT -o OUTPUT --type TYPE`: one-pass conversion + report. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "modelq/convert.h"
#include "modelq/report.h"

#define REPORT_SCHEMA_VERSION 1
#define GIB 1073741824.0
#define MAX_PATTERNS 64
#define MAX_LORAS 8

/* Short options that take a value and may carry it attached (-j2, -tq8_0, -oout.gguf). */
static const char convert_short_with_value[] = "jto";

static const char *const convert_help =
    "usage: modelq convert INPUT -o OUTPUT.gguf [--type TYPE] [options]\n"
    "       modelq convert INPUT -o OUTDIR --type nf4|nf4-dq|fp4|int8_row [--double-quant] [--blocksize 64]\n"
    "       modelq convert ADAPTER_DIR [--base BASE] -o adapter.gguf [--type f32|f16|bf16|q8_0]\n"
    "\n"
    "Converts a checkpoint (safetensors file, sharded index, Hugging Face folder, or GGUF) into a GGUF\n"
    "file in one streaming pass: bounded memory, all cores, identical bytes for any thread count.\n"
    "The output appears complete or not at all (temporary file + rename; removed on error or Ctrl-C).\n"
    "\n"
    "TYPE (llama.cpp's names; the rows of the target table):\n"
    "%s"
    "GGUF types follow llama-quantize's rules: norms and 1-D tensors F32, output.weight Q6_K in\n"
    "quantized files except q8_0, rows that do not fit a block fall back (see README).\n"
    "\n"
    "  -o, --output FILE        output file (.gguf) or folder (bitsandbytes). Never an input file, a folder\n"
    "                           holding the input, or a FIFO/device; an existing folder is replaced only when\n"
    "                           it holds nothing but files modelq writes (else refused, see --force)\n"
    "  --format gguf|bnb        output format (default: .gguf = gguf, a folder = bnb)\n"
    "  --double-quant           NF4/FP4: 8-bit absmax with a nested scale (nf4-dq = nf4 --double-quant)\n"
    "  --blocksize N            NF4/FP4 block size, a power of two in 64..4096 (default 64)\n"
    "  --max-shard-size SIZE    bitsandbytes folder: shards of at most SIZE (5GB, 500MB, 2GiB) with\n"
    "                           model.safetensors.index.json; a module's keys stay in one shard.\n"
    "                           GGUF output: the same as --split-max-size\n"
    "  --split-max-size N[M|G]  GGUF: split into parts of at most N MB/GB of tensor data, named as\n"
    "                           llama.cpp's gguf-split names them: OUT-00001-of-0000N.gguf ... (-o OUT.gguf)\n"
    "  --split-max-tensors N    GGUF: at most N tensors per part (with --split-max-size: either limit)\n"
    "  -t, --type TYPE          see above (default auto)\n"
    "  -j, --threads N          worker threads (default: all cores)\n"
    "  --tensor-type RE=TYPE    tensors whose name matches the regex RE get TYPE (repeatable; first wins)\n"
    "  --keep RE                tensors matching RE keep their source precision (repeatable)\n"
    "  --pure                   the TYPE for every eligible tensor (no Q6_K output, no promotions)\n"
    "  --imatrix FILE           importance matrix from llama.cpp's llama-imatrix (GGUF imatrix or legacy\n"
    "                           .dat), used as llama-quantize --imatrix uses it: Q2_K Q3_K Q4_0 Q4_1 Q5_0\n"
    "                           Q5_1 IQ4_NL IQ4_XS Q4_K Q5_K Q6_K tensors are quantized weighted by it\n"
    "                           (same bytes); its names are GGUF tensor names; one of another model is\n"
    "                           refused; q2_K_S needs it\n"
    "  --no-fallback            a tensor whose rows do not fit the type's block is an error\n"
    "  --allow-requantize       GGUF input: requantize tensors that are already quantized\n"
    "  --dry-run                print the plan; write nothing (with --stats: quantize in memory)\n"
    "  --stats                  per-tensor error: RMSE, max error, SNR (dequantize and compare)\n"
    "  --report FILE.json       also write the report as JSON (schema_version 1)\n"
    "  --report-html FILE.html  also write the HTML report of this type (see `modelq report --help`;\n"
    "                           implies --stats); --plot-tensor NAME picks its staircase's tensor\n"
    "  --force                  bitsandbytes folder: replace an existing OUTDIR even when it holds files\n"
    "                           modelq did not write (they are deleted); without it such a folder is refused\n"
    "  --quiet                  no per-tensor table\n"
    "  --lora DIR[:SCALE]       merge a PEFT LoRA adapter into the weights while converting: W + SCALE x\n"
    "                           alpha/r x B A (rsLoRA alpha/sqrt(r)) before quantizing; repeatable (up to 8);\n"
    "                           the base is a Hugging Face checkpoint (safetensors, .bin, bitsandbytes NF4)\n"
    "  --base BASE              LoRA adapter input (adapter_config.json + adapter_model.safetensors): the base\n"
    "                           model (folder, its config.json, or org/name in the local Hugging Face cache;\n"
    "                           default: the adapter's base_model_name_or_path in that cache). Writes the GGUF\n"
    "                           adapter llama.cpp loads with --lora (rsLoRA as alpha x sqrt(r))\n"
    "  --raw-names              unsupported architecture: keep the tensor names (llama.cpp cannot run it)\n"
    "  --no-vocab               GGUF: write no tokenizer (token ids only; llama.cpp cannot tokenize text with\n"
    "                           it). Without it the tokenizer (tokenizer.model or tokenizer.json) is converted,\n"
    "                           and a folder whose tokenizer cannot be is refused\n"
    "  --reference-kernels      plain C kernels (same bytes; for checking)\n"
    "Exit codes: 0 ok, 1 internal, 2 usage, 3 bad input data, 4 I/O (disk full ...), 5 out of memory.\n";

/* The help text with one line per convert target, from the target table. */
static void print_help(void)
{
    char types[4096];
    size_t k = 0;
    const struct mq_target_info *ti;
    for (int t = 0; (ti = mq_target_info((enum mq_target)t)) != NULL; t++) {
        if (!ti->convert) continue;
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", ti->name, ti->alias ? " = " : "", ti->alias ? ti->alias : "");
        int w = snprintf(types + k, sizeof types - k, "  %-18s %s%s\n", name, ti->help,
                         ti->container == MQ_CONTAINER_BNB ? " [OUTDIR]" : "");
        if (w < 0 || (size_t)w >= sizeof types - k) break;
        k += (size_t)w;
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    printf(convert_help, types); /* the help's one %s is the type list */
#pragma GCC diagnostic pop
    printf("GGUF architectures (config.json architectures[0]; others need --raw-names):\n  %s\n",
           mq_convert_architectures());
}

struct progress_state {
    bool tty;
    int last;
};

/* Library warnings: one stderr line each. */
static void on_warning(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "modelq: warning: %s\n", msg);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress_state *ps = ctx;
    if (!ps->tty || total == 0) return;
    int pct = (int)(done * 100 / total);
    if (pct == ps->last) return;
    ps->last = pct;
    char bar[41];
    int fill = pct * 40 / 100;
    for (int i = 0; i < 40; i++) bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%%  %.2f / %.2f GB", bar, pct, (double)done / 1e9, (double)total / 1e9);
    if (pct == 100) fputc('\n', stderr);
    fflush(stderr);
}

static void print_stats(const struct mq_qstats *s)
{
    printf(" rmse %.3e max %.3e snr %6.2f dB", s->rmse, s->max_abs_err, s->snr_db);
}

static void print_report(const struct mq_convert_report *r, bool quiet)
{
    char a[64], b[64], c[64];
    if (!quiet) {
        printf("%-44s %-6s %-8s %14s %7s  %s\n", "tensor", "from", "to", "bytes", "bpw", "why");
        for (size_t i = 0; i < r->n_tensors; i++) {
            const struct mq_convert_tensor *t = &r->tensors[i];
            printf("%-44s %-6s %-8s %14s %7.3f  %s%s", t->name, t->src_type, t->out_type, cli_group(t->bytes, a, sizeof a),
                   t->bpw, t->why ? t->why : "", t->fell_back ? " [fallback]" : "");
            if (t->lora_terms) printf(" [+%u LoRA]", t->lora_terms);
            if (t->have_stats) print_stats(&t->stats);
            putchar('\n');
        }
        putchar('\n');
    }
    double bpw = r->params ? (double)r->tensor_bytes * 8.0 / (double)r->params : 0.0;
    printf("%-24s %6s %18s %10s %10s %16s %16s\n", "target", "bpw", "bytes", "GB", "GiB", "quantized", "unquantized");
    printf("%-24s %6.3f %18s %10.4f %10.4f %16s %16s\n", r->target, bpw, cli_group(r->tensor_bytes, a, sizeof a),
           (double)r->tensor_bytes / 1e9, (double)r->tensor_bytes / GIB, cli_group(r->quantized_params, b, sizeof b),
           cli_group(r->params - r->quantized_params, c, sizeof c));
    printf("tensors: %zu; parameters: %s; fallbacks: %" PRIu64 "\n", r->n_tensors, cli_group(r->params, a, sizeof a),
           r->n_fallback);
    if (r->have_stats) {
        printf("all quantized tensors:");
        print_stats(&r->total_stats);
        putchar('\n');
    }
    if (r->dry_run) {
        printf("dry run: nothing written (%s would be %s bytes)\n", r->output ? r->output : "the output",
               cli_group(r->file_bytes, a, sizeof a));
    } else if (r->n_parts) {
        printf("wrote a split model of %zu parts, %s (part 1, the one to load) ...: %s bytes in all (%s) in %.2f s, "
               "%u thread%s\n", r->n_parts, r->first_part, cli_group(r->file_bytes, a, sizeof a), r->format, r->seconds,
               r->threads, r->threads == 1 ? "" : "s");
    } else {
        printf("wrote %s: %s bytes (%s) in %.2f s, %u thread%s, %.2f GB/s of input\n", r->output,
               cli_group(r->file_bytes, a, sizeof a), r->format, r->seconds, r->threads, r->threads == 1 ? "" : "s",
               r->seconds > 0 ? (double)r->input_bytes / 1e9 / r->seconds : 0.0);
    }
}

static cJSON *stats_json(const struct mq_qstats *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    cJSON_AddNumberToObject(o, "rmse", s->rmse);
    cJSON_AddNumberToObject(o, "max_abs_err", s->max_abs_err);
    cJSON_AddNumberToObject(o, "mean_abs_err", s->mean_abs_err);
    if (isfinite(s->snr_db)) cJSON_AddNumberToObject(o, "snr_db", s->snr_db);
    else cJSON_AddNullToObject(o, "snr_db");
    cJSON_AddNumberToObject(o, "cosine", s->cosine);
    if (isfinite(s->rel_rmse)) cJSON_AddNumberToObject(o, "rel_rmse", s->rel_rmse);
    else cJSON_AddNullToObject(o, "rel_rmse");
    return o;
}

static int write_json_report(const char *path, const struct mq_convert_report *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "schema_version", REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(doc, "input", r->input);
    if (r->output) cJSON_AddStringToObject(doc, "output", r->output);
    cJSON_AddStringToObject(doc, "format", r->format);
    cJSON_AddStringToObject(doc, "type", r->target);
    cJSON_AddNumberToObject(doc, "file_type", r->file_type);
    cJSON_AddBoolToObject(doc, "dry_run", r->dry_run);
    cJSON_AddNumberToObject(doc, "params", (double)r->params);
    cJSON_AddNumberToObject(doc, "quantized_params", (double)r->quantized_params);
    cJSON_AddNumberToObject(doc, "tensor_bytes", (double)r->tensor_bytes);
    cJSON_AddNumberToObject(doc, "file_bytes", (double)r->file_bytes);
    if (r->n_parts) {
        cJSON_AddNumberToObject(doc, "parts", (double)r->n_parts);
        cJSON_AddStringToObject(doc, "first_part", r->first_part);
    }
    cJSON_AddNumberToObject(doc, "bpw", r->params ? (double)r->tensor_bytes * 8.0 / (double)r->params : 0.0);
    cJSON_AddNumberToObject(doc, "fallbacks", (double)r->n_fallback);
    if (r->have_stats) cJSON_AddItemToObject(doc, "stats", stats_json(&r->total_stats));
    cJSON *arr = cJSON_AddArrayToObject(doc, "tensors");
    for (size_t i = 0; i < r->n_tensors; i++) {
        const struct mq_convert_tensor *t = &r->tensors[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "source_name", t->src_name);
        cJSON_AddStringToObject(o, "source_type", t->src_type);
        cJSON_AddStringToObject(o, "type", t->out_type);
        cJSON_AddNumberToObject(o, "elements", (double)t->numel);
        cJSON_AddNumberToObject(o, "bytes", (double)t->bytes);
        cJSON_AddNumberToObject(o, "bpw", t->bpw);
        cJSON_AddStringToObject(o, "why", t->why ? t->why : "");
        cJSON_AddBoolToObject(o, "fallback", t->fell_back);
        if (t->lora_terms) cJSON_AddNumberToObject(o, "lora_merged", (double)t->lora_terms);
        if (t->have_stats) cJSON_AddItemToObject(o, "stats", stats_json(&t->stats));
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) {
        fprintf(stderr, "modelq: error: out of memory writing the report\n");
        return EXIT_NOMEM;
    }
    /* a hidden temporary file beside the report, created exclusively (never through a link), then
     * renamed over it: the report appears complete or not at all */
    const char *slash = strrchr(path, '/');
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%.*s.%s.modelq-tmp-%ld", slash ? (int)(slash - path + 1) : 0, path,
             slash ? slash + 1 : path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0) close(fd);
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "modelq: error: %s: cannot write the report: %s\n", path, strerror(errno));
        if (fd >= 0) unlink(tmp);
        return EXIT_IO;
    }
    return EXIT_OK;
}

/* "5GB" (10^9, as Hugging Face counts), "500MB", "2GiB", "123456" bytes. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return false;
    static const struct { const char *sfx; double mul; } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
        {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, /* gguf-split's N(M|G): decimal */
        {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].sfx) == 0) {
            double b = v * units[i].mul;
            if (b < 1 || b > 1.8e19) return false;
            *out = (uint64_t)b;
            return true;
        }
    }
    return false;
}

int cmd_convert(int argc, char **argv)
{
    struct mq_convert_options o;
    mq_convert_options_default(&o);
    struct mq_type_override ov[MAX_PATTERNS];
    const char *keep[MAX_PATTERNS];
    struct mq_lora_merge loras[MAX_LORAS];
    char lora_dirs[MAX_LORAS][4096];
    const char *report_path = NULL, *html_path = NULL, *plot_tensor = NULL;
    bool quiet = false;
    char opt[64];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        bool attached = cli_split_option(a, opt, sizeof opt, &val, convert_short_with_value), consumed = false;
        if (attached) a = opt;
#define NEED_VALUE() \
    do { \
        if (!val) return cli_usage_error("convert", "%s needs a value", a); \
        if (!attached) i++; \
        consumed = true; \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            return EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            NEED_VALUE();
            o.output = val;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--type") == 0) {
            NEED_VALUE();
            o.type = val;
        } else if (strcmp(a, "--format") == 0) {
            NEED_VALUE();
            o.format = val;
        } else if (strcmp(a, "-j") == 0 || strcmp(a, "--threads") == 0) {
            uint64_t n;
            NEED_VALUE();
            if (!cli_parse_u64(val, &n) || n > 1024) return cli_usage_error("convert", "%s needs 1..1024", a);
            o.threads = (unsigned)n;
        } else if (strcmp(a, "--tensor-type") == 0) {
            NEED_VALUE();
            const char *eq = strrchr(val, '=');
            if (!eq || eq == val || !eq[1])
                return cli_usage_error("convert", "--tensor-type needs PATTERN=TYPE, got '%s'", val);
            if (o.n_overrides == MAX_PATTERNS) return cli_usage_error("convert", "too many --tensor-type");
            char *pat = strndup(val, (size_t)(eq - val));
            if (!pat) return EXIT_NOMEM;
            ov[o.n_overrides].pattern = pat; /* freed at exit */
            ov[o.n_overrides].type = eq + 1;
            o.n_overrides++;
        } else if (strcmp(a, "--keep") == 0) {
            NEED_VALUE();
            if (o.n_keep == MAX_PATTERNS) return cli_usage_error("convert", "too many --keep");
            keep[o.n_keep++] = val;
        } else if (strcmp(a, "--report") == 0) {
            NEED_VALUE();
            report_path = val;
        } else if (strcmp(a, "--report-html") == 0) {
            NEED_VALUE();
            html_path = val;
        } else if (strcmp(a, "--plot-tensor") == 0) {
            NEED_VALUE();
            plot_tensor = val;
        } else if (strcmp(a, "--lora") == 0) {
            NEED_VALUE();
            if (o.n_loras == MAX_LORAS) return cli_usage_error("convert", "at most 8 --lora");
            /* DIR[:SCALE]: a trailing ":number" is the scale (a folder name may hold ':' too) */
            const char *colon = strrchr(val, ':');
            char *end = NULL;
            double sc = colon ? strtod(colon + 1, &end) : 1.0;
            if (colon && end && end != colon + 1 && *end == '\0' && isfinite(sc)) {
                char *dir = lora_dirs[o.n_loras]; /* the DIR part, in this frame: nothing to free */
                if ((size_t)(colon - val) >= sizeof lora_dirs[0])
                    return cli_usage_error("convert", "--lora path too long");
                snprintf(dir, sizeof lora_dirs[0], "%.*s", (int)(colon - val), val);
                loras[o.n_loras++] = (struct mq_lora_merge){dir, sc};
            } else {
                loras[o.n_loras++] = (struct mq_lora_merge){val, 1.0};
            }
        } else if (strcmp(a, "--imatrix") == 0) {
            NEED_VALUE();
            o.imatrix_path = val;
        } else if (strcmp(a, "--base") == 0) {
            NEED_VALUE();
            o.base = val;
        } else if (strcmp(a, "--force") == 0) {
            o.force = true;
        } else if (strcmp(a, "--pure") == 0) {
            o.pure = true;
        } else if (strcmp(a, "--no-fallback") == 0) {
            o.no_fallback = true;
        } else if (strcmp(a, "--allow-requantize") == 0) {
            o.allow_requantize = true;
        } else if (strcmp(a, "--dry-run") == 0) {
            o.dry_run = true;
        } else if (strcmp(a, "--stats") == 0) {
            o.stats = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = true;
        } else if (strcmp(a, "--double-quant") == 0) {
            o.double_quant = true;
        } else if (strcmp(a, "--blocksize") == 0) {
            uint64_t n;
            NEED_VALUE();
            if (!cli_parse_u64(val, &n) || n < 64 || n > 4096 || (n & (n - 1)))
                return cli_usage_error("convert", "--blocksize must be a power of two in 64..4096");
            o.blocksize = (uint32_t)n;
        } else if (strcmp(a, "--max-shard-size") == 0) {
            NEED_VALUE();
            if (!parse_size(val, &o.max_shard_size))
                return cli_usage_error("convert", "--max-shard-size needs a size like 5GB, 500MB or 2GiB");
        } else if (strcmp(a, "--split-max-size") == 0) {
            NEED_VALUE();
            if (!parse_size(val, &o.split_max_size))
                return cli_usage_error("convert", "--split-max-size needs a size like 500M, 2G, 5GB or 2GiB");
        } else if (strcmp(a, "--split-max-tensors") == 0) {
            uint64_t n;
            NEED_VALUE();
            if (!cli_parse_u64(val, &n) || n < 1 || n > UINT32_MAX)
                return cli_usage_error("convert", "--split-max-tensors needs a count of at least 1");
            o.split_max_tensors = (uint32_t)n;
        } else if (strcmp(a, "--raw-names") == 0) {
            o.raw_names = true;
        } else if (strcmp(a, "--no-vocab") == 0) {
            o.no_vocab = true;
        } else if (strcmp(a, "--reference-kernels") == 0) {
            o.reference_kernels = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_usage_error("convert", "unknown option '%s'", a);
        } else if (attached) {
            return cli_usage_error("convert", "unknown option '%s'", argv[i]);
        } else if (o.input) {
            return cli_usage_error("convert", "one INPUT only ('%s' and '%s')", o.input, a);
        } else {
            o.input = a;
        }
        if (attached && !consumed) return cli_usage_error("convert", "%s takes no value ('%s')", a, argv[i]);
#undef NEED_VALUE
    }
    if (!o.input) return cli_usage_error("convert", "missing INPUT");
    if (!o.output && !o.dry_run) return cli_usage_error("convert", "missing -o OUTPUT (or --dry-run)");
    o.overrides = ov;
    o.keep = keep;
    o.loras = loras;
    o.report_path = report_path;
    struct progress_state ps = {isatty(2) && !o.dry_run, -1};
    o.progress = on_progress;
    o.warn = on_warning;
    o.progress_ctx = &ps;
    mq_convert_install_signal_cleanup();

    struct mq_error err;
    mq_error_clear(&err);
    if (plot_tensor && !html_path) return cli_usage_error("convert", "--plot-tensor needs --report-html");
    struct mq_report *html = NULL;
    if (html_path) {
        struct mq_report_options ro;
        mq_report_options_default(&ro);
        ro.input = o.input;
        ro.plot_tensor = plot_tensor;
        if (mq_report_new(&ro, &html, &err) != MQ_OK) return cli_fail(&err);
        o.tap = mq_report_tap(html);
        o.report_html_path = html_path;
        o.stats = true;
    }
    struct mq_convert_report rep;
    enum mq_status s = mq_convert(&o, &rep, &err);
    int rc = EXIT_OK;
    if (s != MQ_OK) {
        if (ps.tty && ps.last >= 0) fputc('\n', stderr);
        rc = cli_fail(&err);
    } else {
        print_report(&rep, quiet);
        if (report_path) rc = write_json_report(report_path, &rep);
        if (rc == EXIT_OK && html &&
            (mq_report_add(html, &rep, &err) != MQ_OK || mq_report_write(html, html_path, &err) != MQ_OK))
            rc = cli_fail(&err);
    }
    mq_report_free(html);
    mq_convert_report_free(&rep);
    for (size_t i = 0; i < o.n_overrides; i++) free((char *)ov[i].pattern);
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "modelq: error: cannot write to standard output\n");
        return EXIT_IO;
    }
    return rc;
}
