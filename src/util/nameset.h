/*
** nameset.h - a set of C strings for duplicate checks over many names (keys, tensor names).
**
** Open addressing with linear probing on XXH3-64 of the name; the table is at most half full and
** doubles when it would pass that, so n insertions cost O(n) expected time (the pairwise strcmp
** loops it replaces took 106 s for 262,144 tensor names). The set points at the caller's strings
** and never copies or frees them: they must outlive it.
*/
#ifndef MODELQ_NAMESET_H
#define MODELQ_NAMESET_H

#include <stddef.h>

struct mq_nameset {
    const char **slot; /* cap entries, NULL = empty; cap is 0 or a power of two */
    size_t cap, n;
};

/* 0 = inserted, 1 = already in the set (not inserted again), -1 = out of memory. */
int mq_nameset_add(struct mq_nameset *s, const char *name);

/* Frees the table (not the strings) and empties the set. Accepts an empty set. */
void mq_nameset_free(struct mq_nameset *s);

#endif
