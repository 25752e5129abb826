/*
** devutil.h - small helpers shared by the development tools (tools/mk*.c): fatal errors,
** checked allocation, a growable byte buffer, files and folders, and the deterministic
** generators fixtures are drawn from. Not part of libmodelq: tools may simply exit on failure.
**
** dev_die() and its callers prefix every message with the program name given to dev_set_prog()
** ("mkfixture: out of memory"), so call that first in main.
*/
#ifndef MODELQ_DEVUTIL_H
#define MODELQ_DEVUTIL_H

#include <stddef.h>
#include <stdint.h>

/* The name dev_die() and dev_fail() put in front of their messages (not copied: pass a literal). */
void dev_set_prog(const char *name);

/* "PROG: <message>\n" on stderr, then exit(1). */
void dev_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* calloc that dies when out of memory; n == 0 still returns a unique pointer. Caller frees. */
void *dev_xcalloc(size_t n, size_t size);

/* "PROG: <message>\n" on stderr and one more failure counted, for tools that write every file
** they can and report at the end (mkbadfiles, mkbadgguf). */
void dev_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0 when nothing failed; else prints "PROG: N file(s) could not be written" and returns 1 (main's
** exit code). */
int dev_failures_report(void);

/*
** Growable byte buffer; start from {0}, free p when done. p stays NUL-terminated after the bytes
** (not counted in len), so text can be used as a C string.
*/
struct dev_buf {
    char *p;
    size_t len, cap;
};

void dev_buf_put(struct dev_buf *b, const void *data, size_t n);
void dev_buf_puts(struct dev_buf *b, const char *s);
/* Appends formatted text (at most 1023 bytes per call; longer dies as an internal error). */
void dev_buf_printf(struct dev_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mkdir that accepts an existing folder and dies on any other error (one level only). */
void dev_make_dir(const char *path);
/* mkdir -p, best effort: errors are ignored here and surface when a file inside is written. */
void dev_mkdirs(const char *path);
/* Writes DIR/NAME with exactly len bytes of data; dies on any error. */
void dev_write_file(const char *dir, const char *name, const void *data, size_t len);
/* The whole file, NUL-terminated (*len excludes the NUL; len may be NULL); NULL when it cannot be
** opened (errno set by fopen); dies on a read error. Caller frees. */
char *dev_read_file(const char *path, size_t *len);

/* TO_DIR/NAME: a byte-for-byte copy of FROM_DIR/NAME (dies on any error). */
void dev_copy_file(const char *from_dir, const char *to_dir, const char *name);

/* splitmix64's output function: a bijective 64-bit mix (two multiply-xorshifts). */
uint64_t dev_mix64(uint64_t z);
/* splitmix64: advances *state by a constant and returns dev_mix64 of it. */
uint64_t dev_splitmix64(uint64_t *state);
/* FNV-1a 64 of a NUL-terminated string: seeds per-tensor generators from names, so values do not
** depend on the order tensors are generated in. */
uint64_t dev_fnv1a64(const char *s);

/* UTF-8: the byte length of the character whose lead byte is c (1..4; valid text assumed), and
** the code point at s (the fixture tools' own texts, known to be valid). */
size_t dev_utf8_len(unsigned char c);
uint32_t dev_utf8_cp(const char *s);

/* Seconds on the monotonic clock. */
double dev_now(void);

/* A child run measured: exit code (or 128 + signal, or -1 when it could not start), wall and
 * user + system seconds, and its peak RSS (wait4's ru_maxrss, KiB). */
struct dev_child {
    int status;
    double wall, cpu;
    long maxrss_kib;
};

/* Runs argv[0] with argv (execv, no PATH search); stdout to /dev/null when quiet. `tag` prefixes
 * the messages when it cannot start. */
struct dev_child dev_run_child(char *const argv[], int quiet, const char *tag);

#endif
