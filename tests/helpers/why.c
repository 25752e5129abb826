#include "why.h"

#include <stdarg.h>
#include <stdio.h>

int mq_test_why(char *why, size_t len, const char *fmt, ...)
{
    if (!why || !len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}
