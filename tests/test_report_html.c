/*
** test_report_html.c - issue 16: the HTML report of the tiny model (modelq report, convert
** --report-html), read by independent tools:
**   - every SVG is parsed as XML by saxes, a strict parser (tools/interop-report/check-report.mjs),
**     and the file references nothing outside itself (no src/href/url()/script/link);
**   - each section has the expected number of marks: sample points per type, histogram bars
**     whose counts add up to the tensor's elements, heat-map cells = layers x roles (+ output and
**     embeddings) per type, 7 role segments per type, 3 memory parts per estimate row;
**   - the plotted values are the JSON's: heat-map cells = convert --report's rel_rmse and codec,
**     role segments add up to its tensor_bytes, memory bars = estimate --json's bytes;
**   - the staircase's dequantized values are real: NF4 points sit on NF4's 16 levels, Q4_0's
**     on k/8 of the block absmax;
**   - the same bytes with 1 and 2 threads (the sample and the histogram do not depend on order);
**   - headless Chromium loads it without console errors and its screenshot is not blank (with a
**     negative control: a page with a console error and a missing image is caught);
**   - bad paths and types are refused before any data, and a failed write leaves nothing behind.
** Chromium (Debian's chromium) and the npm packages come from tools/setup.sh; without them the
** tests that need them are skipped, except under CI where they fail.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "modelq/quant.h"
#include "modelq/target.h"
#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"
#define CHECK_JS "tools/interop-report/check-report.mjs"

/* ---- tools ---- */

static void need(bool ok, const char *what)
{
    if (ok) return;
    if (getenv("CI")) cr_assert_fail("%s required when CI is set (tools/setup.sh installs it)", what);
    cr_skip_test("skipped: %s not available (tools/setup.sh installs it)", what);
}

static bool have_node_tools(void)
{
    return access("tools/interop-report/node_modules/saxes/package.json", R_OK) == 0 &&
           access("tools/interop-report/node_modules/pngjs/package.json", R_OK) == 0 &&
           system("node --version >/dev/null 2>&1") == 0;
}

static const char *chromium_bin(void)
{
    static const char *const c[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser"};
    for (size_t i = 0; i < 2; i++)
        if (access(c[i], X_OK) == 0) return c[i];
    return NULL;
}

/* stdout of a shell command (asserts exit 0). Caller frees. */
static char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *capture(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    cr_assert(p, "popen %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    cr_assert_eq(st, 0, "%s exited %d", cmd, st);
    return buf;
}

/* The marks of the report as the independent parser sees them. */
static cJSON *read_marks(const char *html)
{
    char *out = capture("node " CHECK_JS " svg '%s'", html);
    cJSON *doc = cJSON_Parse(out);
    free(out);
    cr_assert(doc, "check-report.mjs printed no JSON");
    cJSON *ext = cJSON_GetObjectItem(doc, "external");
    cr_assert_eq(cJSON_GetArraySize(ext), 0, "the report references something outside itself: %s",
                 cJSON_GetArraySize(ext) ? cJSON_GetArrayItem(ext, 0)->valuestring : "");
    cr_assert_geq(cJSON_GetObjectItem(doc, "svgs")->valueint, 6); /* per type: 2 panels, 1 heat map; + 3 */
    return doc;
}

static const char *attr(const cJSON *mark, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(mark, "a"), name);
    return v ? v->valuestring : NULL;
}

static double attr_num(const cJSON *mark, const char *name)
{
    const char *s = attr(mark, name);
    cr_assert(s, "mark without %s", name);
    return strtod(s, NULL);
}

static bool is_mark(const cJSON *m, const char *svg, const char *cls)
{
    const char *c = attr(m, "class");
    return strcmp(cJSON_GetObjectItem(m, "svg")->valuestring, svg) == 0 && c && strcmp(c, cls) == 0;
}

/* Marks of one svg class whose mark class starts with cls, in svg number `nth` of that class (-1: all). */
static int count_marks(const cJSON *doc, const char *svg, const char *cls, int nth, double *sum)
{
    int n = 0, seen = -1, last = -1;
    if (sum) *sum = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
    {
        if (strcmp(cJSON_GetObjectItem(m, "svg")->valuestring, svg) != 0) continue;
        int i = cJSON_GetObjectItem(m, "i")->valueint;
        if (i != last) seen++, last = i;
        const char *c = attr(m, "class");
        if (!c || strncmp(c, cls, strlen(cls)) != 0 || (nth >= 0 && seen != nth)) continue;
        n++;
        if (sum) *sum += attr_num(m, "data-v");
    }
    return n;
}

static const cJSON *json_tensor(const cJSON *rep, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(rep, "tensors"))
    {
        if (strcmp(cJSON_GetObjectItem(t, "name")->valuestring, name) == 0) return t;
    }
    return NULL;
}

static double rel_diff(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1.0); }

/* Heat-map cells of `type` against the JSON report of the same type: count and every value. */
static void check_heat(const cJSON *doc, const cJSON *rep, const char *type, int want_cells)
{
    int cells = 0, with_stats = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(rep, "tensors")) with_stats += cJSON_GetObjectItem(t, "stats") != NULL;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
    {
        if (!is_mark(m, "plot heatmap", "cell") && !is_mark(m, "plot heatmap", "cell mix")) continue;
        if (strcmp(attr(m, "data-type"), type) != 0) continue;
        cells++;
        const cJSON *jt = json_tensor(rep, attr(m, "data-tensor"));
        cr_assert(jt, "%s: cell of %s is no tensor of the JSON report", type, attr(m, "data-tensor"));
        cr_expect_str_eq(attr(m, "data-codec"), cJSON_GetObjectItem(jt, "type")->valuestring, "%s %s", type,
                         attr(m, "data-tensor"));
        bool mixed = strcmp(attr(m, "class"), "cell mix") == 0;
        double v = cJSON_GetObjectItem(cJSON_GetObjectItem(jt, "stats"), "rel_rmse")->valuedouble;
        cr_expect_lt(rel_diff(attr_num(m, "data-v"), v), 1e-12, "%s %s: plotted %s, JSON %.17g", type,
                     attr(m, "data-tensor"), attr(m, "data-v"), v);
        (void)mixed;
    }
    cr_expect_eq(cells, with_stats, "%s: %d cells, %d tensors with stats", type, cells, with_stats);
    cr_expect_eq(cells, want_cells, "%s: %d cells, want %d", type, cells, want_cells);
}

/* Role segments of `type`: 7, adding up to the JSON's tensor_bytes. */
static void check_bytes(const cJSON *doc, const cJSON *rep, const char *type)
{
    int n = 0;
    double sum = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
    {
        if (!is_mark(m, "plot bytes", "seg") || strcmp(attr(m, "data-type"), type) != 0) continue;
        n++;
        sum += attr_num(m, "data-v");
    }
    cr_expect_eq(n, 7, "%s: %d role segments", type, n);
    cr_expect_eq(sum, cJSON_GetObjectItem(rep, "tensor_bytes")->valuedouble, "%s: role bytes %.0f", type, sum);
}

static cJSON *convert_json(const char *dir, const char *type)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, type);
    struct cmd_result r = run_modelq("convert " MODEL " --dry-run --stats -q --type %s --report %s", type, path);
    cr_assert_eq(r.code, 0, "convert %s: %s", type, r.err);
    cmd_result_free(&r);
    return load_json(path);
}

/* ---- the report of five types ---- */

static const char *const types[] = {"q8_0", "q4_0", "nf4", "q4_K", "int8_row"}; /* q4_K = Q4_K_M */
#define NT 5
#define SAMPLE 500

Test(report_html, five_types_marks_and_json_values)
{
    need(have_node_tools(), "node with tools/interop-report's packages");
    char *dir = make_temp_dir("report");
    char html[4200];
    snprintf(html, sizeof html, "%s/r.html", dir);
    struct cmd_result r = run_modelq("report " MODEL " --type q8_0,q4_0,nf4 -t Q4_K_M,int8_row --sample %d --ctx 2048 "
                                     "-o %s", SAMPLE, html);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cJSON *doc = read_marks(html);

    /* 1. staircase: SAMPLE points per type, values real dequantized ones */
    for (int k = 0; k < NT; k++) {
        cr_expect_eq(count_marks(doc, "plot staircase", "pt", k, NULL), SAMPLE, "%s points", types[k]);
    }
    const cJSON *m;
    int nf4_checked = 0, q4_checked = 0;
    int nth = -1, last = -1;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
    {
        if (strcmp(cJSON_GetObjectItem(m, "svg")->valuestring, "plot staircase") != 0) continue;
        int i = cJSON_GetObjectItem(m, "i")->valueint;
        if (i != last) nth++, last = i;
        if (!is_mark(m, "plot staircase", "pt")) continue;
        double y = attr_num(m, "data-y") / attr_num(m, "data-s");
        if (nth == 2) { /* nf4: y = code * absmax exactly, in float32 */
            double best = 1;
            for (unsigned c = 0; c < 16; c++) best = fmin(best, fabs(y - mq_nf4_value(c)));
            cr_expect_lt(best, 1e-6, "nf4 point %s off the 16 levels: %.9g", attr(m, "data-i"), y);
            nf4_checked++;
        } else if (nth == 1) { /* q4_0: (q - 8) d, d = max / -8 in fp16: k/8 of the absmax */
            double k8 = y * 8;
            cr_expect_lt(fabs(k8 - round(k8)), 8 * 1e-3, "q4_0 point %s off k/8: %.9g", attr(m, "data-i"), y);
            q4_checked++;
        }
    }
    cr_expect_eq(nf4_checked, SAMPLE);
    cr_expect_eq(q4_checked, SAMPLE);
    cr_expect_eq(count_marks(doc, "plot staircase", "lvl", 2, NULL), 16, "NF4's 16 levels");
    cr_expect_eq(count_marks(doc, "plot staircase", "lvl", 1, NULL), 17, "Q4_0's k/8, k = -8..8");

    /* 2.-4. against each type's convert --report JSON */
    for (int k = 0; k < NT; k++) {
        cJSON *rep = convert_json(dir, types[k]);
        bool gguf = strcmp(types[k], "nf4") != 0 && strcmp(types[k], "int8_row") != 0;
        const char *plotted = gguf ? "blk.0.attn_q.weight" : "model.layers.0.self_attn.q_proj.weight";
        const cJSON *jt = json_tensor(rep, plotted);
        cr_assert(jt, "%s: no %s", types[k], plotted);
        double sum;
        int bars = count_marks(doc, "plot histogram", "hbar", k, &sum);
        cr_expect(bars >= 2 && bars <= 64 && bars % 2 == 0, "%s: %d histogram bars", types[k], bars);
        cr_expect_eq(sum, cJSON_GetObjectItem(cJSON_GetObjectItem(jt, "stats"), "n")->valuedouble,
                     "%s: histogram counts %.0f", types[k], sum);
        /* tiny-llama: 2 layers x 7 matrices, + token_embd and output in GGUF (bitsandbytes keeps them) */
        check_heat(doc, rep, types[k], gguf ? 2 * 7 + 2 : 2 * 7);
        check_bytes(doc, rep, types[k]);
        cJSON_Delete(rep);
    }
    /* the mixture is visible: Q4_0's and Q4_K_M's output, and some of Q4_K_M's attn_v / ffn_down,
     * are q6_K, outlined */
    int mixed = 0, mixed_k = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
    {
        if (is_mark(m, "plot heatmap", "cell mix")) {
            mixed++;
            mixed_k += strcmp(attr(m, "data-type"), "q4_K") == 0;
            cr_expect_str_eq(attr(m, "data-codec"), "q6_K");
        }
    }
    cr_expect_geq(mixed_k, 3, "outlined q4_K cells: %d", mixed_k);
    cr_expect_eq(mixed - mixed_k, 1, "q4_0: only its output is outlined");

    /* 4. memory bars = estimate --json at the same context */
    char *est_text = capture("$MODELQ_BIN estimate " MODEL " --json --ctx 2048");
    cJSON *est = cJSON_Parse(est_text);
    free(est_text);
    cr_assert(est);
    const cJSON *row;
    int rows = 0;
    cJSON_ArrayForEach(row, cJSON_GetObjectItem(est, "targets"))
    {
        const char *label = cJSON_GetObjectItem(row, "label")->valuestring;
        double parts = 0, weights = -1;
        int nparts = 0;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "marks"))
        {
            if (!is_mark(m, "plot memory", "est") || strcmp(attr(m, "data-row"), label) != 0) continue;
            nparts++;
            parts += attr_num(m, "data-v");
            if (strcmp(attr(m, "data-part"), "weights") == 0) weights = attr_num(m, "data-v");
        }
        cr_expect_eq(nparts, 3, "%s: %d parts", label, nparts);
        cr_expect_eq(weights, cJSON_GetObjectItem(row, "bytes")->valuedouble, "%s weights", label);
        cr_expect_eq(parts, cJSON_GetObjectItem(cJSON_GetObjectItem(row, "inference"), "bytes")->valuedouble,
                     "%s inference", label);
        rows++;
    }
    cr_expect_eq(rows, MQ_ESTIMATE_ROWS);
    cr_expect_eq(count_marks(doc, "plot memory", "gpu", -1, NULL), 6, "8/12/16/24/48/80 GiB lines");
    cJSON_Delete(est);
    cJSON_Delete(doc);
    remove_tree(dir);
    free(dir);
}

Test(report_html, same_bytes_for_any_thread_count)
{
    char *dir = make_temp_dir("report-j");
    struct cmd_result a = run_modelq("report " MODEL " --type iq4_nl,nf4 -j1 -o %s/a.html", dir);
    struct cmd_result b = run_modelq("report " MODEL " --type iq4_nl,nf4 -j2 -o %s/b.html", dir);
    cr_assert_eq(a.code, 0, "%s", a.err);
    cr_assert_eq(b.code, 0, "%s", b.err);
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/a.html", dir);
    snprintf(pb, sizeof pb, "%s/b.html", dir);
    cr_expect(files_equal(pa, pb), "the report depends on the thread count");
    cmd_result_free(&a);
    cmd_result_free(&b);
    remove_tree(dir);
    free(dir);
}

/* convert --report-html: the same run's JSON and HTML agree; --plot-tensor picks a Q6_K tensor. */
Test(report_html, convert_report_html_matches_its_json)
{
    need(have_node_tools(), "node with tools/interop-report's packages");
    char *dir = make_temp_dir("report-conv");
    struct cmd_result r = run_modelq("convert " MODEL " -o %s/out.gguf --type q4_K_M -q --report %s/r.json "
                                     "--report-html %s/r.html --plot-tensor blk.1.attn_v.weight", dir, dir, dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char p[4200];
    snprintf(p, sizeof p, "%s/out.gguf", dir);
    cr_expect(file_exists(p), "the GGUF is written too");
    snprintf(p, sizeof p, "%s/r.json", dir);
    cJSON *rep = load_json(p);
    snprintf(p, sizeof p, "%s/r.html", dir);
    cJSON *doc = read_marks(p);
    check_heat(doc, rep, "q4_K", 16);
    check_bytes(doc, rep, "q4_K");
    double sum;
    count_marks(doc, "plot histogram", "hbar", 0, &sum);
    const cJSON *jt = json_tensor(rep, "blk.1.attn_v.weight");
    cr_assert(jt);
    cr_expect_str_eq(cJSON_GetObjectItem(jt, "type")->valuestring, "q6_K");
    cr_expect_eq(sum, cJSON_GetObjectItem(cJSON_GetObjectItem(jt, "stats"), "n")->valuedouble);
    cr_expect_eq(count_marks(doc, "plot staircase", "pt", 0, NULL), 2000, "the default sample");
    char *html = (char *)read_file_all(p, NULL);
    cr_expect(strstr(html, "blk.1.attn_v.weight (q6_K)"), "the staircase names the tensor and its codec");
    cr_expect(strstr(html, "@media print"), "printable");
    free(html);
    cJSON_Delete(doc);
    cJSON_Delete(rep);
    /* --dry-run: only the reports */
    r = run_modelq("convert " MODEL " --dry-run -q --type nf4 --report-html %s/d.html", dir);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    snprintf(p, sizeof p, "%s/d.html", dir);
    cr_expect(file_exists(p));
    remove_tree(dir);
    free(dir);
}

/* ---- refusals: one line, before any data, nothing left behind ---- */

static void expect_error(int code, const char *needle, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void expect_error(int code, const char *needle, const char *fmt, ...)
{
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    struct cmd_result r = run_modelq("%s", args);
    cr_expect_eq(r.code, code, "%s: exit %d: %s", args, r.code, r.err);
    cr_expect(strstr(r.err, needle), "%s: stderr '%s' lacks '%s'", args, r.err, needle);
    cr_expect(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "one line: %s", r.err);
    cmd_result_free(&r);
}

Test(report_html, refusals)
{
    char *dir = make_temp_dir("report-bad");
    run_shell("cp -r " MODEL " '%s/M'", dir);
    char *before = tree_snapshot(dir);
    expect_error(2, "unknown --type 'q9'", "report %s/M --type q8_0,q9 -o %s/r.html", dir, dir);
    expect_error(2, "--type Q8_0 is given twice", "report %s/M --type q8_0,Q8_0 -o %s/r.html", dir, dir);
    expect_error(2, "missing -o FILE.html", "report %s/M --type q8_0", dir);
    expect_error(2, "--plot-tensor 'nope': no tensor", "report %s/M --type q8_0 --plot-tensor nope -o %s/r.html",
                 dir, dir);
    expect_error(2, "the HTML report would replace the input file", "report %s/M --type q8_0 -o %s/M/config.json",
                 dir, dir);
    expect_error(2, "--sample needs 1..100000 points", "report %s/M --type q8_0 --sample 0 -o %s/r.html", dir, dir);
    expect_error(2, "the HTML report would replace the JSON report",
                 "convert %s/M --dry-run --report %s/x --report-html %s/x", dir, dir, dir);
    expect_error(2, "--plot-tensor needs --report-html", "convert %s/M --dry-run --plot-tensor x", dir);
    /* a folder is not a file */
    expect_error(2, "the HTML report is an existing folder, not a file name", "report %s/M --type q8_0 -o %s/M", dir, dir);
    char *after = tree_snapshot(dir);
    cr_expect_str_eq(after, before, "nothing written or changed");
    free(before);
    free(after);
    /* a full disk while writing: the old report stays, no temporary file is left */
    run_shell("echo old > '%s/r.html'", dir);
    before = tree_snapshot(dir);
    setenv("MODELQ_FAULT_WRITE_AFTER", "1000", 1);
    expect_error(4, "No space left on device", "report %s/M --type q8_0 -o %s/r.html", dir, dir);
    unsetenv("MODELQ_FAULT_WRITE_AFTER");
    after = tree_snapshot(dir);
    cr_expect_str_eq(after, before, "a failed write changes nothing");
    free(before);
    free(after);
    remove_tree(dir);
    free(dir);
}

/* ---- headless Chromium ---- */

/* Loads `html` in headless Chromium with its console logged; *console gets the console lines and
** failed loads (caller frees); returns the screenshot's non-white pixel share. */
static double render(const char *chromium, const char *dir, const char *html, char **console)
{
    char abs[4200], png[4200], log[4200];
    cr_assert(realpath(html, abs), "realpath %s", html);
    snprintf(png, sizeof png, "%s/shot.png", dir);
    snprintf(log, sizeof log, "%s/chromium.log", dir);
    unlink(png);
    /* --no-sandbox: tests may run as root; a private profile folder per run */
    run_shell("timeout 120 '%s' --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run "
              "--user-data-dir='%s/profile' --enable-logging=stderr --v=0 --window-size=1280,2400 "
              "--screenshot='%s' 'file://%s' >/dev/null 2>'%s'",
              chromium, dir, png, abs, log);
    char *text = (char *)read_file_all(log, NULL);
    cr_assert(text);
    size_t cap = strlen(text) + 1, len = 0;
    *console = calloc(cap, 1);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "CONSOLE") || strstr(line, "Failed to load") || strstr(line, "Uncaught") ||
            strstr(line, "net::ERR_")) {
            len += (size_t)snprintf(*console + len, cap - len, "%s\n", line);
        }
    }
    free(text);
    char *out = capture("node " CHECK_JS " png '%s'", png);
    cJSON *d = cJSON_Parse(out);
    free(out);
    cr_assert(d);
    double share = cJSON_GetObjectItem(d, "nonwhite")->valuedouble /
                   (cJSON_GetObjectItem(d, "width")->valuedouble * cJSON_GetObjectItem(d, "height")->valuedouble);
    cJSON_Delete(d);
    return share;
}

Test(report_html, chromium_loads_it_without_console_errors)
{
    const char *chromium = chromium_bin();
    need(chromium != NULL, "chromium (Debian package)");
    need(have_node_tools(), "node with tools/interop-report's packages");
    char *dir = make_temp_dir("report-chromium");
    char html[4200];
    snprintf(html, sizeof html, "%s/r.html", dir);
    struct cmd_result r = run_modelq("report " MODEL " --type q8_0,q4_0,nf4 -o %s", html);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    char *console;
    double share = render(chromium, dir, html, &console);
    cr_expect_str_eq(console, "", "console: %s", console);
    cr_expect_gt(share, 0.03, "screenshot is blank: %.4f of its pixels are not white", share);
    free(console);
    /* negative control: the same check sees a console error and a missing resource */
    snprintf(html, sizeof html, "%s/bad.html", dir);
    run_shell("printf '<!DOCTYPE html><p>x</p><img src=\"missing.png\"><script>console.error(\"boom\")</script>' > '%s'",
              html);
    share = render(chromium, dir, html, &console);
    cr_expect(strstr(console, "boom"), "the console check sees console.error: '%s'", console);
    cr_expect_lt(share, 0.03, "a nearly blank page reads as blank (%.4f)", share);
    free(console);
    remove_tree(dir);
    free(dir);
}

/* negative control of the XML check: a broken SVG fails the parser */
Test(report_html, xml_checker_rejects_broken_svg)
{
    need(have_node_tools(), "node with tools/interop-report's packages");
    char *dir = make_temp_dir("report-xml");
    run_shell("printf '<html><svg xmlns=\"http://www.w3.org/2000/svg\"><rect class=\"a\" data-v=\"1\"></svg></html>' "
              "> '%s/bad.html'", dir);
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "node " CHECK_JS " svg '%s/bad.html' >/dev/null 2>&1", dir);
    cr_expect_neq(system(cmd), 0, "an unclosed <rect> must fail");
    run_shell("printf '<html><svg xmlns=\"http://www.w3.org/2000/svg\"><image href=\"http://x/y.png\"/></svg></html>' "
              "> '%s/ext.html'", dir);
    char *out = capture("node " CHECK_JS " svg '%s/ext.html'", dir);
    cr_expect(strstr(out, "http://x/y.png"), "an external reference is reported: %s", out);
    free(out);
    remove_tree(dir);
    free(dir);
}
