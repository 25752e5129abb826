/*
** why.h - the "why" message of the test helpers that fail without asserting (they report to the
** caller, which decides between skipping and failing): one printf-style writer for them all.
*/
#ifndef MODELQ_TEST_WHY_H
#define MODELQ_TEST_WHY_H

#include <stddef.h>

/* Formats the message into why[len] (nothing when why is NULL or len 0); returns -1, so a helper
 * can `return mq_test_why(why, len, "...", ...);` on its failure path. */
int mq_test_why(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
