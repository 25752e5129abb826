/*
** test_imatrix_llama.c - `modelq convert --imatrix` equals llama.cpp's own llama-quantize with the
** same importance matrix, tensor for tensor (ggml type, dims and bytes; compared by name, since
** llama-quantize writes its tensors in another order), for every GGUF type whose quantizer takes
** importances.
**
** The reference is llama_model_quantize of the pinned libllama (tests/helpers/llama_quantize.h)
** on modelq's F32 GGUF of the checkpoint, with params.imatrix = the entries llama-quantize's
** load_imatrix makes of the GGUF imatrix (in_sum2 / counts per matrix, 1 where a count is 0),
** read here with ggml's own GGUF reader, not modelq's parser. modelq converts the checkpoint
** directly with --imatrix FILE (the GGUF file, and for one type the legacy .dat).
**
** Models: tiny-llama (testdata) and a Mixtral-shaped checkpoint (mkfamily mixtral: 8 experts,
** 3-D expert tensors), whose imatrix holds one vector per expert: a row of expert e must use
** slice e. The imatrices are tools/mkimatrix's (every matrix, log-normal importances with exact
** zeros, one tiny and one huge column per entry).
** Negative controls: modelq with the shuffled imatrix (same shape, columns rotated) differs from
** llama-quantize with the right one; llama-quantize with the experts' slices rotated differs from
** modelq on exactly the expert tensors. Without the libraries the tests skip; with CI set they fail.
*/
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml_ref.h"
#include "gguf_dump.h"
#include "llama_need.h"
#include "llama_quantize.h"
#include "quantize_compare.h"
#include "run_cmd.h"

static const struct mq_ggml *G; /* set by llama_quantize_or_skip() at the start of each test */
static char why[4096];
static char *tmp;

static void setup(void) { tmp = make_temp_dir("imatrix-llama"); }
static void teardown(void)
{
    if (tmp) remove_tree(tmp);
    free(tmp);
}

/* Every llama_ftype whose tensors are quantized by an importance-taking ggml type. */
struct target {
    const char *type; /* modelq --type */
    int ftype;        /* llama_ftype */
};
static const struct target targets[] = {
    {"q4_0", 2},    {"q4_1", 3},    {"q5_0", 8},    {"q5_1", 9},    {"iq4_nl", 25}, {"q4_K_S", 14},
    {"q4_K_M", 15}, {"q5_K_S", 16}, {"q5_K_M", 17}, {"q6_K", 18},   {"q2_K", 10},   {"q2_K_S", 21},
    {"q3_K_S", 11}, {"q3_K_M", 12}, {"q3_K_L", 13}, {"iq4_xs", 30},
};
#define NTARGETS (sizeof targets / sizeof targets[0])

/* llama-quantize's imatrix entries from a GGUF imatrix, as ggml reads it */
struct entries {
    struct mq_llama_imatrix *e; /* n + 1, NULL-name terminated */
    size_t *n_mat;              /* matrices (experts) per entry */
    size_t n;
};

static void entries_load(struct entries *out, const char *path)
{
    struct ggml_context *ctx = NULL;
    struct mq_gguf_init_params p = {false, &ctx};
    struct gguf_context *g = G->gguf_init_from_file(path, p);
    cr_assert(g, "ggml cannot read %s", path);
    int64_t nt = G->gguf_get_n_tensors(g);
    out->e = calloc((size_t)nt + 1, sizeof *out->e);
    out->n_mat = calloc((size_t)nt + 1, sizeof *out->n_mat);
    out->n = 0;
    for (int64_t i = 0; i < nt; i++) {
        const char *tn = G->gguf_get_tensor_name(g, i);
        size_t len = strlen(tn), sfx = strlen(".in_sum2");
        if (len <= sfx || strcmp(tn + len - sfx, ".in_sum2") != 0) continue;
        char name[256], cn[300];
        snprintf(name, sizeof name, "%.*s", (int)(len - sfx), tn);
        snprintf(cn, sizeof cn, "%s.counts", name);
        struct ggml_tensor *s = G->ggml_get_tensor(ctx, tn), *c = G->ggml_get_tensor(ctx, cn);
        cr_assert(s && c, "%s: %s without counts", path, tn);
        int64_t ne[4];
        cr_assert(mq_ggml_tensor_ne(G, s, ne, why, sizeof why), "%s", why);
        const float *sd = G->ggml_get_data(s), *cd = G->ggml_get_data(c);
        float *w = malloc((size_t)(ne[0] * ne[1]) * sizeof *w);
        for (int64_t m = 0; m < ne[1]; m++)
            for (int64_t k = 0; k < ne[0]; k++) w[m * ne[0] + k] = cd[m] > 0.0f ? sd[m * ne[0] + k] / cd[m] : 1.0f;
        struct mq_llama_imatrix *e = &out->e[out->n++];
        e->name = strdup(name);
        e->data = w;
        e->size = (size_t)(ne[0] * ne[1]);
        out->n_mat[out->n - 1] = (size_t)ne[1];
    }
    G->gguf_free(g);
    G->ggml_free(ctx);
    cr_assert(out->n > 0, "%s: no entries", path);
}

static void entries_free(struct entries *es)
{
    for (size_t i = 0; i < es->n; i++) {
        free((void *)es->e[i].name);
        free((void *)es->e[i].data);
    }
    free(es->e);
    free(es->n_mat);
}

/* modelq's file against llama-quantize's, by tensor name; returns the differing tensors. Counts
 * the 3-D tensors compared in *experts. */
/*
** MoE control: llama-quantize given the same vectors with the expert slices rotated (expert e
** gets e + 1's) differs from modelq's file on the expert tensors, and only there: so the match
** above used each expert's own slice.
*/
static void expert_slices_matter(const char *src, const char *base, const struct entries *es)
{
    struct mq_llama_imatrix *rot = calloc(es->n + 1, sizeof *rot);
    float **owned = calloc(es->n, sizeof *owned);
    int rotated = 0;
    for (size_t i = 0; i < es->n; i++) {
        rot[i] = es->e[i];
        const size_t n_mat = es->n_mat[i], per = es->e[i].size / n_mat;
        if (n_mat < 2) continue;
        owned[i] = malloc(es->e[i].size * sizeof(float));
        for (size_t m = 0; m < n_mat; m++)
            memcpy(owned[i] + m * per, es->e[i].data + ((m + 1) % n_mat) * per, per * sizeof(float));
        rot[i].data = owned[i];
        rotated++;
    }
    cr_assert_gt(rotated, 0, "no expert entries");
    char ours[1024], ref[1024];
    snprintf(ours, sizeof ours, "%s/moe-q4_K_M.gguf", tmp);
    snprintf(ref, sizeof ref, "%s/moe-q4_K_M-rot.gguf", tmp);
    char im[1024];
    snprintf(im, sizeof im, "%s/mixtral-im.gguf", tmp);
    struct cmd_result r = run_modelq("convert '%s' -o '%s' --type q4_K_M --imatrix '%s' -q", src, ours, im);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    cr_assert_eq(mq_llama_quantize_run_imatrix(base, ref, 15, 2, rot, why, sizeof why), 0, "%s", why);
    int neg = quantize_compare_files(G, "mixtral q4_K_M (experts rotated)", ours, ref, true, NULL);
    cr_expect_eq(neg, rotated, "rotating the expert slices of %d entries changed %d tensors", rotated, neg);
    remove(ours);
    remove(ref);
    for (size_t i = 0; i < es->n; i++) free(owned[i]);
    free(owned);
    free(rot);
}

/* Every target on one checkpoint, with its F32 GGUF and imatrices written here. */
static void check_model(const char *model, const char *src, bool moe)
{
    const char *bdir = getenv("MODELQ_BUILD_DIR");
    char base[1024], ours[1024], ref[1024], what[128];
    snprintf(base, sizeof base, "%s/%s-f32.gguf", tmp, model);
    struct cmd_result r = run_modelq("convert '%s' -o '%s' --type f32 -q", src, base);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cmd_result_free(&r);
    run_shell("'%s/mkimatrix' '%s' '%s/%s-im.gguf' '%s/%s-im.dat' 11", bdir ? bdir : "build", base, tmp, model, tmp,
              model);
    run_shell("'%s/mkimatrix' '%s' '%s/%s-sh.gguf' '%s/%s-sh.dat' 11 --shuffle", bdir ? bdir : "build", base, tmp,
              model, tmp, model);
    char im[1024];
    snprintf(im, sizeof im, "%s/%s-im.gguf", tmp, model);
    struct entries es;
    entries_load(&es, im);
    int bad = 0, experts = 0;
    for (size_t i = 0; i < NTARGETS; i++) {
        snprintf(ours, sizeof ours, "%s/%s-%s.gguf", tmp, model, targets[i].type);
        snprintf(ref, sizeof ref, "%s/%s-%s-ref.gguf", tmp, model, targets[i].type);
        r = run_modelq("convert '%s' -o '%s' --type %s --imatrix '%s' -q", src, ours, targets[i].type, im);
        cr_assert_eq(r.code, 0, "%s %s: %s", model, targets[i].type, r.err);
        cmd_result_free(&r);
        cr_assert_eq(mq_llama_quantize_run_imatrix(base, ref, targets[i].ftype, 2, es.e, why, sizeof why), 0, "%s",
                     why);
        snprintf(what, sizeof what, "imatrix_llama: %s %s", model, targets[i].type);
        bad += quantize_compare_files(G, what, ours, ref, false, &experts);
        /* the legacy .dat gives the same importances for one matrix per entry */
        if (!moe && (strcmp(targets[i].type, "q3_K_M") == 0 || strcmp(targets[i].type, "q4_K_M") == 0)) {
            r = run_modelq("convert '%s' -o '%s' --type %s --imatrix '%s/%s-im.dat' -q", src, ours, targets[i].type,
                           tmp, model);
            cr_assert_eq(r.code, 0, "%s %s .dat: %s", model, targets[i].type, r.err);
            cmd_result_free(&r);
            snprintf(what, sizeof what, "imatrix_llama: %s %s (.dat)", model, targets[i].type);
            bad += quantize_compare_files(G, what, ours, ref, false, NULL);
        }
        /* negative control: another imatrix of the same shape gives other bytes */
        if (strcmp(targets[i].type, "q2_K") == 0 || strcmp(targets[i].type, "q4_K_M") == 0 ||
            strcmp(targets[i].type, "q3_K_S") == 0) {
            r = run_modelq("convert '%s' -o '%s' --type %s --imatrix '%s/%s-sh.gguf' -q", src, ours, targets[i].type,
                           tmp, model);
            cr_assert_eq(r.code, 0, "%s %s shuffled: %s", model, targets[i].type, r.err);
            cmd_result_free(&r);
            snprintf(what, sizeof what, "imatrix_llama: %s %s (shuffled)", model, targets[i].type);
            int neg = quantize_compare_files(G, what, ours, ref, true, NULL);
            cr_expect_gt(neg, 0, "%s: the shuffled imatrix gave llama-quantize's bytes", what);
        }
        remove(ours);
        remove(ref);
    }
    if (moe) {
        cr_expect_gt(experts, 0, "%s: no 3-D expert tensor compared", model);
        expert_slices_matter(src, base, &es);
    }
    entries_free(&es);
    remove(base);
    cr_expect_eq(bad, 0, "%s: %d tensors differ from llama-quantize --imatrix", model, bad);
}

TestSuite(imatrix_llama, .init = setup, .fini = teardown, .timeout = 900);

Test(imatrix_llama, tiny_llama) { G = llama_quantize_or_skip(); check_model("tiny-llama", "testdata/tiny-llama", false); }

Test(imatrix_llama, mixtral_per_expert_importances)
{
    G = llama_quantize_or_skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/mixtral", tmp);
    run_shell("mkdir -p '%s' && '%s/mkfamily' mixtral '%s' > '%s.log' 2>&1 || { cat '%s.log' >&2; exit 1; }", dir,
              getenv("MODELQ_BUILD_DIR"), dir, dir, dir);
    check_model("mixtral", dir, true);
}
