/*
** logprob.h - next-token distributions from logits, for tests comparing two forward passes.
*/
#ifndef MODELQ_TEST_LOGPROB_H
#define MODELQ_TEST_LOGPROB_H

/* out[i] = log softmax(x)[i], in double, for n logits. */
void logprob_log_softmax(const float *x, int n, double *out);

/* KL(softmax(p) || softmax(q)) of two logit rows of n entries, in double (natural log). */
double logprob_kl(const float *p, const float *q, int n);

#endif
