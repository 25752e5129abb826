/* mutants.c - see mutants.h. */
#include "mutants.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

unsigned char *mutant_load(const char *path, size_t *n, size_t extra)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + extra);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

void mutant_write(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, n, f), n);
    fclose(f);
}
