/*
** test_estimate_placement.c - estimate's placement options without llama.cpp: the usage errors (one
** line, exit 2), the JSON's shape and sums (every weight byte on exactly one device or the host;
** -ngl 0 keeps everything on the host), --fit's answers checked against estimate itself (the
** largest -ngl fits and one more does not; the same for the context in steps of 256), and a
** model without layers refused. The numbers against llama.cpp are in test_gpu_placement.c.
*/
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_cmd.h"

#define MODEL "testdata/tiny-llama"

static void expect_usage(const char *args, const char *message)
{
    struct cmd_result r = run_modelq("estimate %s %s", MODEL, args);
    cr_expect_eq(r.code, 2, "%s: exit %d", args, r.code);
    cr_expect(strstr(r.err, message) != NULL, "%s: stderr '%s' lacks '%s'", args, r.err, message);
    cr_expect(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "%s: not one line: '%s'", args, r.err);
    cr_expect_str_eq(r.out, "");
    cmd_result_free(&r);
}

Test(estimate_placement, usage_errors)
{
    expect_usage("--gpu 24XB", "--gpu: '24XB' is not a memory size (24GiB, 16GB, 8000MiB)");
    expect_usage("--gpu 0", "--gpu: '0' is not a memory size");
    expect_usage("--gpu ,1GiB", "--gpu needs 1 to 16 comma-separated sizes (24GiB,16GiB)");
    expect_usage("--gpu 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "--gpu needs 1 to 16 comma-separated sizes");
    expect_usage("--gpu 1GiB -ts 1,1", "--tensor-split has 2 ratios for 1 --gpu devices");
    expect_usage("-ts 1,-1", "-ts: '-1' is not a ratio (a number, 0 or more)");
    expect_usage("--fit", "--fit needs --gpu SIZE[,SIZE...] (the memory to fit)");
    expect_usage("--ngl x", "--ngl needs a layer count (0 or more, or 'all')");
    expect_usage("-ngl", "-ngl needs a layer count (0 or more, or 'all')");
}

Test(estimate_placement, needs_layers)
{
    struct cmd_result r = run_modelq("estimate testdata/safetensors/ok/all-dtypes.safetensors --ngl 1");
    cr_expect_eq(r.code, 2);
    cr_expect(strstr(r.err, "all-dtypes.safetensors: --ngl/--gpu need the model's layers and heads (config.json, or "
                            "a GGUF's metadata)") != NULL, "%s", r.err);
    cmd_result_free(&r);
}

static cJSON *estimate_json(const char *args)
{
    struct cmd_result r = run_modelq("estimate %s --json %s", MODEL, args);
    cr_assert_eq(r.code, 0, "%s: %s", args, r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cmd_result_free(&r);
    return j;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "no number '%s'", k);
    return v->valuedouble;
}

/* Every row: the devices' and the host's weights add up to the row's bytes (the model has an output
 * tensor, so nothing is duplicated), and the KV cache of all devices is the model's. */
static void expect_sums(cJSON *j, int n_gpus)
{
    cJSON *inf = cJSON_GetObjectItem(j, "inference"), *pl = cJSON_GetObjectItem(inf, "placement"), *t;
    cr_assert_not_null(pl);
    cr_expect(!cJSON_IsTrue(cJSON_GetObjectItem(pl, "tied_output")));
    double kv = num(cJSON_GetObjectItem(pl, "host"), "kv_bytes");
    for (int d = 0; d < n_gpus; d++) kv += num(cJSON_GetArrayItem(cJSON_GetObjectItem(pl, "gpus"), d), "kv_bytes");
    cr_expect_eq((uint64_t)kv, (uint64_t)num(cJSON_GetObjectItem(inf, "kv_cache"), "bytes"));
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "targets")) {
        cJSON *p = cJSON_GetObjectItem(t, "placement");
        double w = num(p, "host_weights_bytes"), bytes = num(t, "bytes");
        for (int d = 0; d < n_gpus; d++) w += cJSON_GetArrayItem(cJSON_GetObjectItem(p, "gpu_weights_bytes"), d)->valuedouble;
        /* each tensor is padded to 32 bytes in its buffer: at most 31 bytes per tensor more */
        cr_expect(w >= bytes && w <= bytes + 31.0 * num(j, "tensors"), "%s: placed %.0f of %.0f bytes",
                  cJSON_GetObjectItem(t, "target")->valuestring, w, bytes);
    }
}

Test(estimate_placement, json_shape_and_sums)
{
    cJSON *j = estimate_json("--ngl 0 --gpu 8GiB");
    expect_sums(j, 1);
    cJSON *g0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"),
                                                                            "placement"), "gpus"), 0);
    cr_expect_eq(num(g0, "layers"), 0);
    cr_expect_eq(num(g0, "kv_bytes"), 0);
    cr_expect_eq(num(g0, "compute_bytes"), 0);
    cr_expect(!cJSON_IsTrue(cJSON_GetObjectItem(g0, "output")));
    cJSON_Delete(j);
    /* all of it on two GPUs 1:1: the model's 2 layers + output as 3 slots, points 0.5, 1 */
    j = estimate_json("--ngl all --gpu 8GiB,8GiB -ts 1,1");
    expect_sums(j, 2);
    cJSON *gpus = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"), "placement"), "gpus");
    cr_expect_eq(num(cJSON_GetArrayItem(gpus, 0), "first_layer"), 0);
    cr_expect_eq(num(cJSON_GetArrayItem(gpus, 0), "layers"), 2); /* 0/3 and 1/3 are below 0.5 */
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(gpus, 1), "output")));
    cr_expect_eq(num(cJSON_GetArrayItem(gpus, 1), "layers"), 0);
    cJSON_Delete(j);
    /* without placement options: "placement": null, and no per-row placement */
    j = estimate_json("");
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "inference"), "placement")));
    cr_expect_null(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "targets"), 0), "placement"));
    cJSON_Delete(j);
}

/* Does row `target` fit with these options? */
static bool fits(const char *target, const char *args)
{
    cJSON *j = estimate_json(args), *t;
    bool ok = false, found = false;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "targets"))
        if (strcmp(cJSON_GetObjectItem(t, "target")->valuestring, target) == 0) {
            found = true;
            ok = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(t, "placement"), "fits"));
        }
    cr_assert(found, "no row %s", target);
    cJSON_Delete(j);
    return ok;
}

/* --fit's answers are the boundaries of "fits" (a GPU with the 512 MiB reserve and a little more:
 * the tiny model's 2 layers and KV cache decide). */
Test(estimate_placement, fit_is_the_boundary)
{
    static const char *const gpus[] = {"518MiB", "540MiB", "600MiB", "520MiB,523MiB"};
    for (size_t g = 0; g < sizeof gpus / sizeof gpus[0]; g++) {
        char args[256];
        snprintf(args, sizeof args, "--gpu %s --fit --ctx 1024", gpus[g]);
        cJSON *j = estimate_json(args), *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "targets")) {
            const char *name = cJSON_GetObjectItem(t, "target")->valuestring;
            cJSON *p = cJSON_GetObjectItem(t, "placement"), *fn = cJSON_GetObjectItem(p, "fit_ngl"),
                  *fc = cJSON_GetObjectItem(p, "fit_ctx");
            char a[256];
            if (cJSON_IsNumber(fn)) {
                snprintf(a, sizeof a, "--gpu %s --ctx 1024 --ngl %d", gpus[g], fn->valueint);
                cr_expect(fits(name, a), "%s %s: --fit says -ngl %d fits", gpus[g], name, fn->valueint);
                if (fn->valueint < 3) {
                    snprintf(a, sizeof a, "--gpu %s --ctx 1024 --ngl %d", gpus[g], fn->valueint + 1);
                    cr_expect(!fits(name, a), "%s %s: -ngl %d fits too", gpus[g], name, fn->valueint + 1);
                }
            } else {
                snprintf(a, sizeof a, "--gpu %s --ctx 1024 --ngl 0", gpus[g]);
                cr_expect(!fits(name, a), "%s %s: --fit says nothing fits, but -ngl 0 does", gpus[g], name);
            }
            if (cJSON_IsNumber(fc)) {
                snprintf(a, sizeof a, "--gpu %s --ctx %d", gpus[g], fc->valueint);
                cr_expect(fits(name, a), "%s %s: --fit says ctx %d fits", gpus[g], name, fc->valueint);
                if (fc->valueint < 2048) { /* the trained context caps the search */
                    snprintf(a, sizeof a, "--gpu %s --ctx %d", gpus[g], fc->valueint + 256);
                    cr_expect(!fits(name, a), "%s %s: ctx %d fits too", gpus[g], name, fc->valueint + 256);
                }
            }
        }
        cJSON_Delete(j);
    }
}

Test(estimate_placement, text_table)
{
    struct cmd_result r = run_modelq("estimate %s --ngl 2 --gpu 600MiB,1GiB -ts 1,1 --fit", MODEL);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_expect(strstr(r.out, "placement: -ngl 2 of 2 layers + output, 2 GPUs (llama.cpp split mode layer)\n") != NULL,
              "%s", r.out);
    cr_expect(strstr(r.out, "  GPU0 (0.59 GiB): layers 1-1;") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "  GPU1 (1.00 GiB): the output layer only;") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "  host: token embeddings, layers 0-0; KV ") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "max -ngl   max ctx\n") != NULL, "%s", r.out);
    cmd_result_free(&r);
    /* without placement options the text has no placement section */
    r = run_modelq("estimate %s", MODEL);
    cr_expect(strstr(r.out, "placement") == NULL);
    cmd_result_free(&r);
}
