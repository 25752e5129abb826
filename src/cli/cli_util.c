/* cli_util.c - exit codes, error printing and number formatting shared by the commands. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_verbose = false;

int cli_exit_code(enum mq_status s)
{
    switch (s) {
    case MQ_OK: return EXIT_OK;
    case MQ_E_USAGE: return EXIT_USAGE;
    case MQ_E_IO: return EXIT_IO;
    case MQ_E_CORRUPT:
    case MQ_E_LIMIT:
    case MQ_E_OVERFLOW:
    case MQ_E_UNSUPPORTED:
    case MQ_E_RANGE: return EXIT_BAD_INPUT;
    case MQ_E_NOMEM: return EXIT_NOMEM;
    case MQ_E_STATE:
    case MQ_E_INTERNAL: return EXIT_INTERNAL;
    }
    return EXIT_INTERNAL;
}

int cli_fail(const struct mq_error *err)
{
    fprintf(stderr, "modelq: error: %s\n", err->msg);
    if (cli_verbose && err->src_file)
        fprintf(stderr, "modelq: (%s, check %s, raised at %s:%d)\n", mq_status_name(err->code),
                err->check ? err->check : "-", err->src_file, err->src_line);
    return cli_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "modelq %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'modelq %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9') return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0) return false;
    *out = v;
    return true;
}

const char *cli_group(uint64_t v, char *buf, size_t cap)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%" PRIu64, v);
    size_t n = strlen(raw), o = 0;
    for (size_t i = 0; i < n && o + 2 < cap; i++) {
        buf[o++] = raw[i];
        size_t left = n - i - 1;
        if (left && left % 3 == 0) buf[o++] = ',';
    }
    buf[o] = '\0';
    return buf;
}

const char *cli_shape(const uint64_t *shape, uint32_t ndim, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%" PRIu64, i ? ", " : "", shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
    return buf;
}

int cli_print_json(cJSON *doc)
{
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) {
        fprintf(stderr, "modelq: error: out of memory writing JSON\n");
        return EXIT_NOMEM;
    }
    puts(text);
    free(text);
    return EXIT_OK;
}

bool cli_split_option(const char *arg, char *name, size_t cap, const char **val, const char *short_with_value)
{
    if (arg[0] == '-' && arg[1] == '-') {
        const char *eq = strchr(arg, '=');
        if (!eq || (size_t)(eq - arg) >= cap) return false;
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        *val = eq + 1;
        return true;
    }
    if (arg[0] == '-' && arg[1] && arg[1] != '-' && arg[2] && cap >= 3 && strchr(short_with_value, arg[1])) {
        name[0] = '-';
        name[1] = arg[1];
        name[2] = '\0';
        *val = arg + 2;
        return true;
    }
    return false;
}
