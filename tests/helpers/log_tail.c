/* log_tail.c - the last few KiB of a log (log_tail.h). */
#include "log_tail.h"

#include <string.h>

void log_tail_clear(struct log_tail *t)
{
    t->len = 0;
    t->buf[0] = '\0';
}

void log_tail_append(struct log_tail *t, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof t->buf) {
        text += n - (sizeof t->buf - 1);
        n = sizeof t->buf - 1;
    }
    if (t->len + n >= sizeof t->buf) {
        size_t drop = t->len + n - (sizeof t->buf - 1);
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, text, n);
    t->len += n;
    t->buf[t->len] = '\0';
}
