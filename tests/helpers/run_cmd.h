/*
** run_cmd.h - run the modelq binary ($MODELQ_BIN) or a built tool from a test and capture
** its exit status, stdout and stderr.
*/
#ifndef MODELQ_TEST_RUN_CMD_H
#define MODELQ_TEST_RUN_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cmd_result {
    int code;        /* exit code, or -signal when killed by a signal */
    char *out, *err; /* captured stdout / stderr (NUL-terminated) */
};

/* Runs "$MODELQ_BIN <args>" through /bin/sh (args are shell words). */
struct cmd_result run_modelq(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cmd_result_free(struct cmd_result *r);

struct cJSON;

/* Whole file into memory (NULL when missing), NUL-terminated; *len gets the size. Caller frees. */
uint8_t *read_file_all(const char *path, size_t *len);
bool files_equal(const char *a, const char *b);
/* The JSON object in file `path` (asserts that it can be read and is an object). Caller frees
** with cJSON_Delete. */
struct cJSON *load_json(const char *path);
bool file_exists(const char *path);
/* A fresh temporary folder under /tmp (caller removes it with remove_tree). */
char *make_temp_dir(const char *tag);
void remove_tree(const char *path);
/* Runs a shell command (printf format); the test fails when it does not exit 0. */
void run_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Every entry under `dir`: path, type, size and link target, then the sha256 of each regular file,
** sorted; two equal snapshots mean nothing changed on disk. Caller frees. */
char *tree_snapshot(const char *dir);
/* Number of entries in a folder whose name contains `needle`. */
int count_entries_containing(const char *dir, const char *needle);

#endif
