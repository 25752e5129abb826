/*
** modelq/error.h - the one error type of modelq.
**
** Every library call that can fail returns an `enum mq_status` and, on failure, fills a
** caller-owned `struct mq_error` with the code, a one-line message that names the file (and the
** tensor, where there is one) and the rule broken, and the source location that raised it.
** The library never prints and never exits; the CLI maps codes to exit codes (README, "Exit codes").
**
** Status values are stable: they may be logged or compared by scripts.
*/
#ifndef MODELQ_ERROR_H
#define MODELQ_ERROR_H

#include <stdarg.h>

#include "modelq/export.h"

enum mq_status {
    MQ_OK = 0,
    MQ_E_USAGE = 1,        /* caller asked for something invalid (bad option, bad argument) */
    MQ_E_IO = 10,          /* open/read/write/rename failed; sys_errno says why */
    MQ_E_CORRUPT = 20,     /* input bytes break a rule of their format */
    MQ_E_LIMIT = 21,       /* input exceeds a configured limit (header size, dims, counts) */
    MQ_E_OVERFLOW = 22,    /* a size computed from input overflows 64 bits */
    MQ_E_UNSUPPORTED = 23, /* well-formed input we do not handle (dtype, format, pickle) */
    MQ_E_RANGE = 24,       /* values that cannot be represented (NaN/Inf, f16 overflow) */
    MQ_E_NOMEM = 30,       /* allocation failed */
    MQ_E_STATE = 40,       /* API called in the wrong order */
    MQ_E_INTERNAL = 50     /* a bug: an invariant did not hold */
};

#define MQ_ERROR_MSG_MAX 512

struct mq_error {
    enum mq_status code;
    int sys_errno;           /* errno for MQ_E_IO, else 0 */
    const char *check;       /* static name of the validation rule broken, or NULL */
    const char *src_file;    /* where in modelq it was raised (for --verbose) */
    int src_line;
    char msg[MQ_ERROR_MSG_MAX];
};

/* Resets `err` to MQ_OK with an empty message. */
MQ_API void mq_error_clear(struct mq_error *err);

/* Fills `err` (may be NULL) and returns `code`, so callers can `return mq_error_set(...)`. */
MQ_API enum mq_status mq_error_set_at(struct mq_error *err, enum mq_status code, const char *check,
                               const char *src_file, int src_line, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
MQ_API enum mq_status mq_error_vset_at(struct mq_error *err, enum mq_status code, const char *check,
                                const char *src_file, int src_line, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* Prefixes the stored message with "prefix: " (used to add a file or tensor name on the way up). */
MQ_API void mq_error_prefix(struct mq_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stable lower-case name of a status ("corrupt", "io", ...). Never NULL. */
MQ_API const char *mq_status_name(enum mq_status code);

/* Raise an error with a named check: MQ_FAIL(err, MQ_E_CORRUPT, "header-within-file", "%s: ...", path) */
#define MQ_FAIL(err, code, check, ...) mq_error_set_at((err), (code), (check), __FILE__, __LINE__, __VA_ARGS__)

/* Evaluate a call returning enum mq_status and return early on failure. */
#define MQ_TRY(expr)                                                                                \
    do {                                                                                            \
        enum mq_status mq_try_status_ = (expr);                                                     \
        if (mq_try_status_ != MQ_OK) return mq_try_status_;                                         \
    } while (0)

#endif /* MODELQ_ERROR_H */
