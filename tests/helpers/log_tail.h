/*
** log_tail.h - the last few KiB of a library's log (llama.cpp's log callback in the test helpers),
** kept for failure messages: older text is dropped from the front as new text arrives.
*/
#ifndef MODELQ_TEST_LOG_TAIL_H
#define MODELQ_TEST_LOG_TAIL_H

#include <stddef.h>

struct log_tail {
    char buf[4096]; /* always NUL-terminated */
    size_t len;
};

void log_tail_clear(struct log_tail *t);
void log_tail_append(struct log_tail *t, const char *text);

#endif
