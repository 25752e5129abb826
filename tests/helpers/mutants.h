/*
** mutants.h - scaffolding shared by the reader mutation tests (tests/test_reader_mutations.c,
** tests/test_gguf_mutations.c): a valid fixture is loaded with room to grow, mutated in memory,
** and each mutant is written to one temporary file that the reader then opens.
*/
#ifndef MODELQ_TEST_MUTANTS_H
#define MODELQ_TEST_MUTANTS_H

#include <stddef.h>

/* The bytes of `path` in a buffer of *n + extra bytes (*n = file size); asserts on failure.
** Caller frees. */
unsigned char *mutant_load(const char *path, size_t *n, size_t extra);

/* Replaces the file `path` with b[0, n); asserts on failure. */
void mutant_write(const char *path, const unsigned char *b, size_t n);

#endif
