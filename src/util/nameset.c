/* nameset.c - hashed set of names for linear-time duplicate checks (see nameset.h). */
#include "nameset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NAMESET_MIN_CAP 64u

static size_t slot_of(const char *name, size_t cap) { return (size_t)XXH3_64bits(name, strlen(name)) & (cap - 1); }

/* Rehashes into a table of `cap` slots; 0 or -1 when out of memory (the set is unchanged). */
static int grow(struct mq_nameset *s, size_t cap)
{
    const char **slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slot[i]) continue;
        size_t j = slot_of(s->slot[i], cap);
        while (slot[j]) j = (j + 1) & (cap - 1);
        slot[j] = s->slot[i];
    }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
    return 0;
}

int mq_nameset_add(struct mq_nameset *s, const char *name)
{
    if (s->n + 1 > s->cap / 2) {
        if (s->cap > SIZE_MAX / 2 / sizeof *s->slot) return -1;
        if (grow(s, s->cap ? s->cap * 2 : NAMESET_MIN_CAP)) return -1;
    }
    size_t j = slot_of(name, s->cap);
    for (; s->slot[j]; j = (j + 1) & (s->cap - 1))
        if (strcmp(s->slot[j], name) == 0) return 1;
    s->slot[j] = name;
    s->n++;
    return 0;
}

void mq_nameset_free(struct mq_nameset *s)
{
    free(s->slot);
    memset(s, 0, sizeof *s);
}
