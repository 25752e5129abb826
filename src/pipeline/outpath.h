/*
** outpath.h - private: what an output path may replace. The rules that keep a user's files safe.
**
** Every path modelq writes (-o, --report) is checked before any tensor data is read, and the
** folder rules again just before the finished output is moved into place. Paths are compared by
** identity (device + inode after resolving links), never by spelling.
**
** A file output (GGUF, the JSON report)
**   - is not ".", "..", "/" or a name ending in "/"; its folder exists, is writable and is not on
**     a read-only filesystem; its name leaves room for the temporary name beside it (NAME_MAX);
**   - if it exists: it is a regular file (or a symbolic link to one; the rename then replaces the
**     link, never the file it points to), not a folder, FIFO, device or socket;
**   - is none of the input's files: weights, shards, the index, config.json and the tokenizer and
**     generation files of every input folder (hf_folder.h), also when reached through a hard or
**     symbolic link.
** A folder output (bitsandbytes)
**   - is not a symbolic link (replacing it would swap the link, not the folder it names);
**   - is not an input folder nor an ancestor of one (the input would move into a hidden folder);
**   - if it exists it is a folder that holds only files modelq writes (mq_hf_is_written_name),
**     its safetensors files carrying modelq's checksum record (a downloaded checkpoint has the
**     same file names, not the record), so replacing it loses nothing of the user's; otherwise it
**     is refused, naming the other entries, unless `force` (--force) says to replace it and
**     everything in it.
*/
#ifndef MODELQ_OUTPATH_H
#define MODELQ_OUTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "modelq/error.h"
#include "model_impl.h"

/* Longest suffix a temporary name adds to an output's final name: ".NAME.modelq-tmp-PID". */
#define MQ_TMP_NAME_EXTRA 32

struct mq_file_id {
    dev_t dev;
    ino_t ino;
    char *path;                 /* for messages */
};

/* The files a conversion reads and the folders that hold them. */
struct mq_input_set {
    struct mq_file_id *files;
    size_t n_files, cap_files;
    struct mq_file_id *dirs;
    size_t n_dirs, cap_dirs;
};

/* Collects the model's files, config.json and the checkpoint files of each input folder. */
enum mq_status mq_input_set_build(const struct mq_model *m, struct mq_input_set *in, struct mq_error *err);
void mq_input_set_free(struct mq_input_set *in);

enum mq_out_kind { MQ_OUT_FILE, MQ_OUT_FOLDER };

/*
** Checks `path` against the rules above. `what` names the option in messages ("the output",
** "the report"). in may be NULL (no input to protect).
*/
enum mq_status mq_outpath_check(const char *path, enum mq_out_kind kind, const struct mq_input_set *in, bool force,
                                const char *what, struct mq_error *err);

/* Folder rule only (used again at commit): `dir` is absent, or a real folder that holds only files
** modelq writes (or anything, with force). */
enum mq_status mq_outpath_check_replace_folder(const char *dir, bool force, struct mq_error *err);

/* The folder part of `path` ("." when there is none, "/" for "/x") and its final name, trailing
** slashes ignored; malloc'd (NULL when out of memory). */
char *mq_path_parent(const char *path);
char *mq_path_base(const char *path);

/* Do two output paths name the same directory entry (same folder by identity, same final name)?
** *inside is set when `b` is an existing folder and `a` lies inside it (at any depth). */
bool mq_outpath_same(const char *a, const char *b, bool *inside);

/*
** Removes `name` inside the folder open as `parent` (AT_FDCWD: relative to the working folder), and everything below it, never following a
** symbolic link (a link is removed as a link). Depth is bounded; returns 0 or -1 (errno set).
*/
int mq_remove_tree_at(int parent, const char *name);

#endif
