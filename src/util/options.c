/* options.c - taking a public options struct of any header version (options.h). */
#include "options.h"

#include <string.h>

enum mq_status mq_options_take(void *full, size_t full_size, const void *user, size_t min_size, const char *what,
                               struct mq_error *err)
{
    size_t user_size;
    memcpy(&user_size, user, sizeof user_size); /* the struct's first field */
    if (user_size < min_size)
        return MQ_FAIL(err, MQ_E_USAGE, "options-size", "struct %s: struct_size %zu (not set by %s_init(), which "
                       "the header provides; at least %zu expected)", what, user_size, what, min_size);
    if (user_size > full_size) {
        /* a newer header: what this library does not know must be left zero (default) */
        const unsigned char *tail = (const unsigned char *)user + full_size;
        for (size_t i = 0; i < user_size - full_size; i++)
            if (tail[i])
                return MQ_FAIL(err, MQ_E_USAGE, "options-size", "struct %s: byte %zu is set, but this library "
                               "(libmodelq, %zu-byte struct) does not know that field (the program was built "
                               "against a newer modelq header)", what, full_size + i, full_size);
        user_size = full_size;
    }
    memcpy(full, user, user_size);
    memcpy(full, &full_size, sizeof full_size);
    return MQ_OK;
}

void mq_options_give(void *user, size_t struct_size, const void *defaults, size_t def_size)
{
    const size_t n = struct_size < def_size ? struct_size : def_size;
    memcpy(user, defaults, n);
    if (struct_size > n) memset((unsigned char *)user + n, 0, struct_size - n); /* a newer header's fields */
}
