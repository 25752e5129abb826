/*
** test_tables.c - the codec and target tables are the single source of truth, and agree with
** each other and with the GGUF type table: every fact a row states is checked against the
** others (an estimate row per position, names unique, a GGUF target's codec has a ggml type with
** the same block geometry as ggml's table), and the CLI's --type help and names come from them.
*/
#include <criterion/criterion.h>
#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "modelq/codec.h"
#include "modelq/estimate.h"
#include "modelq/target.h"
#include "run_cmd.h"

static size_t n_targets(void)
{
    size_t n = 0;
    while (mq_target_info((enum mq_target)n)) n++;
    return n;
}

Test(tables, every_named_target_has_a_complete_row)
{
    size_t n = n_targets();
    cr_assert_geq(n, (size_t)MQ_TARGET_COUNT);
    cr_expect_null(mq_target_info(MQ_TARGET_NONE));
    for (size_t i = 0; i < n; i++) {
        const struct mq_target_info *ti = mq_target_info((enum mq_target)i);
        cr_expect(ti->name && *ti->name && ti->label && *ti->label, "row %zu", i);
        cr_expect_not_null(mq_codec_info(ti->codec), "%s: codec", ti->name);
        if (ti->convert) cr_expect(ti->help && *ti->help, "%s: convert rows have help", ti->name);
        if (ti->container == MQ_CONTAINER_GGUF) {
            cr_expect(ti->rules == MQ_RULES_GGUF || ti->rules == MQ_RULES_GGUF_FLOAT || ti->rules == MQ_RULES_ALL_FLOAT,
                      "%s", ti->name);
            cr_expect_geq(mq_codec_info(ti->codec)->ggml_type, 0, "%s: a GGUF target's codec is a ggml type",
                          ti->name);
            if (ti->rules == MQ_RULES_GGUF) cr_expect_geq(ti->llama_ftype, 0, "%s: file type", ti->name);
        }
        if (ti->container == MQ_CONTAINER_BNB) cr_expect_eq(ti->rules, MQ_RULES_BNB_LINEAR, "%s", ti->name);
        cr_expect_eq(mq_target_is_gguf((enum mq_target)i), ti->container == MQ_CONTAINER_GGUF, "%s", ti->name);
    }
}

Test(tables, estimate_rows_are_one_per_position)
{
    size_t n = n_targets();
    int seen[MQ_ESTIMATE_ROWS] = {0};
    for (size_t i = 0; i < n; i++) {
        int r = mq_target_info((enum mq_target)i)->estimate_row;
        cr_assert(r >= 0 && r <= MQ_ESTIMATE_ROWS, "row %d", r);
        if (r) seen[r - 1]++;
    }
    for (int k = 0; k < MQ_ESTIMATE_ROWS; k++) {
        cr_expect_eq(seen[k], 1, "estimate row %d is held by exactly one target", k + 1);
        enum mq_target t = mq_target_of_estimate_row(k);
        cr_expect_eq(mq_target_info(t)->estimate_row, k + 1);
    }
    cr_expect_eq(mq_target_of_estimate_row(MQ_ESTIMATE_ROWS), MQ_TARGET_NONE);
}

Test(tables, convert_names_and_aliases_are_unique_and_found)
{
    size_t n = n_targets();
    for (size_t i = 0; i < n; i++) {
        const struct mq_target_info *a = mq_target_info((enum mq_target)i);
        if (!a->convert) continue;
        enum mq_target t;
        cr_expect(mq_target_for_convert(a->name, &t) && t == (enum mq_target)i, "%s", a->name);
        if (a->alias) cr_expect(mq_target_for_convert(a->alias, &t) && t == (enum mq_target)i, "%s", a->alias);
        cr_expect(strstr(mq_target_convert_names(), a->name) != NULL, "%s listed", a->name);
        for (size_t j = i + 1; j < n; j++) {
            const struct mq_target_info *b = mq_target_info((enum mq_target)j);
            if (!b->convert) continue;
            cr_expect(strcasecmp(a->name, b->name) != 0, "%s twice", a->name);
            cr_expect(!a->alias || strcasecmp(a->alias, b->name) != 0, "%s twice", a->alias);
            cr_expect(!b->alias || strcasecmp(a->name, b->alias) != 0, "%s twice", a->name);
        }
    }
    enum mq_target t;
    cr_expect(!mq_target_for_convert("f16x", &t));
}

/* A codec with a ggml type has the block geometry ggml's type table gives that type. */
Test(tables, codec_rows_agree_with_the_ggml_type_table)
{
    for (int c = 0; c < MQ_CODEC_COUNT; c++) {
        const struct mq_codec_info *ci = mq_codec_info((enum mq_codec)c);
        cr_assert_not_null(ci);
        cr_expect(ci->quantize_ref && ci->quantize_fast && ci->dequantize, "%s: kernels", ci->name);
        enum mq_codec back;
        cr_expect(mq_codec_from_name(ci->name, &back) && back == (enum mq_codec)c, "%s: name lookup", ci->name);
        if (ci->ggml_type < 0) continue;
        const struct mq_ggml_type *g = mq_ggml_type(ci->ggml_type);
        cr_assert_not_null(g, "%s: ggml type %d", ci->name, ci->ggml_type);
        cr_expect(strcasecmp(g->name, ci->name) == 0, "%s vs ggml %s", ci->name, g->name);
        cr_expect_eq(g->blck, ci->block_elems, "%s: block", ci->name);
        cr_expect_eq(g->bytes, ci->block_bytes, "%s: block bytes", ci->name);
        cr_expect_eq(g->quantized, ci->block_elems > 1, "%s: quantized", ci->name);
        cr_expect_eq(ci->fp16_scales, g->quantized, "%s: ggml block types carry fp16 scales", ci->name);
    }
}

/* `convert --help` lists exactly the convert rows, in table order. */
Test(tables, convert_help_is_the_table)
{
    struct cmd_result r = run_modelq("convert --help");
    cr_assert_eq(r.code, 0);
    const char *at = r.out;
    const struct mq_target_info *ti;
    for (int t = 0; (ti = mq_target_info((enum mq_target)t)) != NULL; t++) {
        if (!ti->convert) continue;
        const char *hit = strstr(at, ti->help);
        cr_expect_not_null(hit, "%s's help line", ti->name);
        if (hit) at = hit;
    }
    cmd_result_free(&r);
}
