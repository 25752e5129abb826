/*
** hf_cache.c - `org/name[@revision]` to a snapshot folder of the local Hugging Face cache.
**
** The cache (huggingface_hub's layout) lives in $HF_HUB_CACHE, else $HF_HOME/hub, else
** ~/.cache/huggingface/hub (XDG_CACHE_HOME is honoured as huggingface_hub does:
** $XDG_CACHE_HOME/huggingface/hub). A model is
**   models--ORG--NAME/refs/REVISION        a text file holding the commit hash (REVISION: main,
**                                          another branch or a tag)
**   models--ORG--NAME/snapshots/COMMIT/    the files (symbolic links into ../../blobs/)
** `@COMMIT` (40 hex digits) names a snapshot directly. Nothing is ever downloaded.
*/
#include "hf_cache.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"

#define REF_MAX 256

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A repository id part: letters, digits, '-', '_', '.', not starting with '.', 1..96 bytes. */
static bool id_part_ok(const char *s, size_t n)
{
    if (n == 0 || n > 96 || s[0] == '.') return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
    return true;
}

static bool is_commit(const char *s)
{
    if (strlen(s) != 40) return false;
    for (size_t i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return false;
    return true;
}

bool mq_hf_cache_is_repo_id(const char *spec)
{
    const char *slash = strchr(spec, '/');
    if (!slash || strchr(slash + 1, '/')) return false;
    const char *at = strchr(slash + 1, '@');
    size_t name_len = at ? (size_t)(at - slash - 1) : strlen(slash + 1);
    if (at && (!at[1] || strlen(at + 1) >= REF_MAX || strstr(at + 1, "..") || strchr(at + 1, '/'))) return false;
    return id_part_ok(spec, (size_t)(slash - spec)) && id_part_ok(slash + 1, name_len);
}

/* The cache root and how it was chosen (for messages). */
static bool cache_root(char *out, size_t cap, const char **how)
{
    const char *v;
    int n;
    if ((v = getenv("HF_HUB_CACHE")) && *v) {
        *how = "$HF_HUB_CACHE";
        n = snprintf(out, cap, "%s", v);
    } else if ((v = getenv("HF_HOME")) && *v) {
        *how = "$HF_HOME/hub";
        n = snprintf(out, cap, "%s/hub", v);
    } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
        *how = "$XDG_CACHE_HOME/huggingface/hub";
        n = snprintf(out, cap, "%s/huggingface/hub", v);
    } else if ((v = getenv("HOME")) && *v) {
        *how = "~/.cache/huggingface/hub";
        n = snprintf(out, cap, "%s/.cache/huggingface/hub", v);
    } else {
        return false;
    }
    return n > 0 && (size_t)n < cap;
}

enum mq_status mq_hf_cache_resolve(const char *spec, char *out, size_t cap, struct mq_error *err)
{
    char org[128], name[128], rev[REF_MAX] = "main";
    const char *slash = strchr(spec, '/'), *at = strchr(spec, '@');
    snprintf(org, sizeof org, "%.*s", (int)(slash - spec), spec);
    snprintf(name, sizeof name, "%.*s", (int)((at ? at : spec + strlen(spec)) - slash - 1), slash + 1);
    if (at) snprintf(rev, sizeof rev, "%s", at + 1);
    char root[PATH_MAX];
    const char *how = "";
    if (!cache_root(root, sizeof root, &how))
        return MQ_FAIL(err, MQ_E_IO, "hf-cache",
                       "%s: not a path, and no Hugging Face cache to look in (set HF_HUB_CACHE or HF_HOME)", spec);
    char repo[PATH_MAX + 300];
    snprintf(repo, sizeof repo, "%s/models--%s--%s", root, org, name);
    if (!is_dir(repo))
        return MQ_FAIL(err, MQ_E_IO, "hf-cache",
                       "%s: not a path, and not in the Hugging Face cache (looked for %s, the cache from %s); "
                       "modelq never downloads: fetch it with huggingface-cli first",
                       spec, repo, how);
    char commit[REF_MAX];
    if (is_commit(rev)) {
        snprintf(commit, sizeof commit, "%s", rev);
    } else {
        char ref[sizeof repo + REF_MAX + 16];
        snprintf(ref, sizeof ref, "%s/refs/%s", repo, rev);
        char *text;
        size_t len;
        struct mq_error e2;
        if (mq_read_small_file(ref, REF_MAX, "hf-ref", &text, &len, &e2) != MQ_OK)
            return MQ_FAIL(err, MQ_E_IO, "hf-cache", "%s: revision '%s' is not in the cache (no %s)", spec, rev, ref);
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = '\0';
        bool ok = is_commit(text);
        snprintf(commit, sizeof commit, "%s", text);
        free(text);
        if (!ok)
            return MQ_FAIL(err, MQ_E_CORRUPT, "hf-cache", "%s: %s does not hold a commit hash", spec, ref);
    }
    int n = snprintf(out, cap, "%s/snapshots/%s", repo, commit);
    if (n < 0 || (size_t)n >= cap) return MQ_FAIL(err, MQ_E_USAGE, "path", "%s: cache path too long", spec);
    if (!is_dir(out))
        return MQ_FAIL(err, MQ_E_IO, "hf-cache", "%s: revision '%s' points at snapshot %s, which is not in the cache",
                       spec, rev, out);
    return MQ_OK;
}
