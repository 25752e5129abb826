/*
** quant_testdata.h - deterministic test inputs for the quantizer tests: a seeded RNG, normal
** samples, and "adversarial" rows (zeros, constants, rounding ties, huge/tiny values, denormals,
** repeated maxima of both signs) that stress the rounding and max-search paths of every codec.
*/
#ifndef MODELQ_QUANT_TESTDATA_H
#define MODELQ_QUANT_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

struct mq_test_rng {
    uint64_t s;
};

void mq_test_rng_seed(struct mq_test_rng *r, uint64_t seed);
uint64_t mq_test_rng_u64(struct mq_test_rng *r);
double mq_test_rng_unit(struct mq_test_rng *r);    /* [0, 1) */
double mq_test_rng_normal(struct mq_test_rng *r);  /* N(0, 1), Box-Muller */

/* Number of adversarial row kinds mq_test_fill_row understands (kind 0..count-1). */
#define MQ_TEST_ROW_KINDS 16
/* Name of a kind, for messages. */
const char *mq_test_row_kind_name(int kind);
/*
** Fills x[0..n) with a row of the given kind; n is a multiple of 32. Kinds 0..2 are random
** (normal, uniform, heavy-tailed); the others are adversarial. No NaN/Inf and every value keeps
** fp16 scales finite (|x| <= 1e6), so all codecs accept them.
*/
void mq_test_fill_row(struct mq_test_rng *r, int kind, float *x, size_t n);

/* A seed for random test rows: MODELQ_DIFF_SEED=<n> when set (to replay a run), else drawn from
 * the clock. mq_test_diff_seed also prints "<what>: random rows with seed N (replay: ...)". */
uint64_t mq_test_pick_seed(void);
/* Rows of row_bytes that differ between want (the reference, e.g. ggml) and got: their count; the
 * first differing byte of each is printed to stderr ("<label> row R differs from ggml at byte K
 * (ggml XX, ours YY)") while fewer than 3 have been shown, counting `shown` already shown. */
int mq_test_row_diffs(const char *label, const uint8_t *want, const uint8_t *got, size_t nrows, size_t row_bytes,
                      int shown);
uint64_t mq_test_diff_seed(const char *what);

#endif /* MODELQ_QUANT_TESTDATA_H */
