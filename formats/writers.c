/* writers.c - the one table of output writers (their ops: modelq/plugin.h). */
#include <string.h>
#include <strings.h>

#include "format.h"
#include "modelq/plugin.h"

#include <sys/stat.h>

extern const struct mq_writer_ops mq_gguf_writer;
extern const struct mq_writer_ops mq_bnb_writer;

static const struct mq_writer_ops *const writers[] = {
    &mq_gguf_writer,
    &mq_bnb_writer,
};

#define N_WRITERS (sizeof writers / sizeof writers[0])

const struct mq_writer_ops *mq_writer_by_name(const char *name)
{
    for (size_t i = 0; i < N_WRITERS; i++)
        if (strcasecmp(writers[i]->name, name) == 0) return writers[i];
    return NULL;
}

const struct mq_writer_ops *mq_writer_for_path(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < N_WRITERS; i++) {
        size_t e = strlen(writers[i]->ext);
        if (e && n > e && strcasecmp(path + n - e, writers[i]->ext) == 0) return writers[i];
    }
    /* a folder (existing, or a path ending in '/' or without an extension): the folder writer */
    struct stat st;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    bool folder = (n && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) ||
                  (!strchr(base, '.') && stat(path, &st) != 0);
    if (folder)
        for (size_t i = 0; i < N_WRITERS; i++)
            if (writers[i]->folder) return writers[i];
    return NULL;
}

const char *mq_writer_names(void) { return "gguf (a .gguf file), bnb (a Hugging Face folder)"; }
