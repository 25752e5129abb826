/* error.c - filling and naming struct mq_error (see include/modelq/error.h). */
#include "modelq/error.h"

#include <stdio.h>
#include <string.h>

void mq_error_clear(struct mq_error *err)
{
    if (!err) return;
    memset(err, 0, sizeof *err);
}

enum mq_status mq_error_vset_at(struct mq_error *err, enum mq_status code, const char *check,
                                const char *src_file, int src_line, const char *fmt, va_list ap)
{
    if (!err) return code;
    err->code = code;
    err->sys_errno = 0;
    err->check = check;
    err->src_file = src_file;
    err->src_line = src_line;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    /* One line, always: a hostile name must not inject a newline into the terminal. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}

enum mq_status mq_error_set_at(struct mq_error *err, enum mq_status code, const char *check,
                               const char *src_file, int src_line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mq_error_vset_at(err, code, check, src_file, src_line, fmt, ap);
    va_end(ap);
    return code;
}

void mq_error_prefix(struct mq_error *err, const char *fmt, ...)
{
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* prefix + ": " + old message, truncated to the buffer */
    size_t pl = strlen(prefix), ml = strlen(err->msg);
    if (pl + 2 >= sizeof err->msg) pl = sizeof err->msg - 3;
    if (pl + 2 + ml >= sizeof err->msg) ml = sizeof err->msg - 3 - pl;
    memmove(err->msg + pl + 2, err->msg, ml);
    err->msg[pl + 2 + ml] = '\0';
    memcpy(err->msg, prefix, pl);
    err->msg[pl] = ':';
    err->msg[pl + 1] = ' ';
}

const char *mq_status_name(enum mq_status code)
{
    switch (code) {
    case MQ_OK: return "ok";
    case MQ_E_USAGE: return "usage";
    case MQ_E_IO: return "io";
    case MQ_E_CORRUPT: return "corrupt";
    case MQ_E_LIMIT: return "limit";
    case MQ_E_OVERFLOW: return "overflow";
    case MQ_E_UNSUPPORTED: return "unsupported";
    case MQ_E_RANGE: return "range";
    case MQ_E_NOMEM: return "nomem";
    case MQ_E_STATE: return "state";
    case MQ_E_INTERNAL: return "internal";
    }
    return "unknown";
}
