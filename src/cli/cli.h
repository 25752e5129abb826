/*
** cli.h - the modelq command line: one file per command, a table in main.c.
** The CLI alone owns exit codes, stdout/stderr and formatting; it includes only include/modelq/.
*/
#ifndef MODELQ_CLI_H
#define MODELQ_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "modelq/error.h"

/* Exit codes (README "Exit codes"). */
enum {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,
    EXIT_USAGE = 2,
    EXIT_BAD_INPUT = 3,
    EXIT_IO = 4,
    EXIT_NOMEM = 5,
    EXIT_MISMATCH = 6,      /* verify: a checksum does not match */
    EXIT_NO_CHECKSUMS = 7   /* verify: the file carries no checksums */
};

int cmd_inspect(int argc, char **argv);
int cmd_estimate(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Prints "modelq: <message>" on stderr (one line) and returns the exit code for err->code. */
int cli_fail(const struct mq_error *err);
/* Prints a usage error ("modelq <cmd>: <message>; see --help") and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_exit_code(enum mq_status s);

/*
** Option values written attached: "--name=value" gives name "--name" and *val "value"; "-jN", for a
** short option letter listed in `short_with_value`, gives "-j" and "N". Returns true when the
** value was attached (the next argument is then not consumed); otherwise changes nothing.
*/
bool cli_split_option(const char *arg, char *name, size_t cap, const char **val, const char *short_with_value);

/* Parses a positive decimal integer option value; false when invalid. */
bool cli_parse_u64(const char *s, uint64_t *out);

/* "6,738,415,616" */
const char *cli_group(uint64_t v, char *buf, size_t cap);

/* Shape as "[4096, 11008]" */
const char *cli_shape(const uint64_t *shape, uint32_t ndim, char *buf, size_t cap);

extern bool cli_verbose;

/* Test switches from the environment into the library's hooks (cli_test_hooks.c). */
void cli_apply_test_hooks(void);

struct cJSON;
/* Prints a JSON document on stdout and deletes it; EXIT_OK or EXIT_NOMEM. */
int cli_print_json(struct cJSON *doc);

#endif
