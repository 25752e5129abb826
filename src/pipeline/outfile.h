/*
** outfile.h - private: an output file that appears complete or not at all.
**
** Data goes to a temporary file in the output's folder, named ".NAME.modelq-tmp-PID" so a stray
** one (left by SIGKILL or a power cut) is recognisable; commit = fsync, rename over the output,
** fsync the folder. abort (any error) and the terminating signals (mq_convert_install_signal_cleanup)
** remove the temporary file; an existing output is never touched before the rename.
**
** Before any data: free space for the planned size is checked (statvfs) and reserved with
** fallocate where the filesystem supports it, so a full disk is reported up front.
** Test hook: MODELQ_FAULT_WRITE_AFTER=N makes writes fail with ENOSPC once N bytes have been
** written (the path a full disk takes when fallocate is not supported).
*/
#ifndef MODELQ_OUTFILE_H
#define MODELQ_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modelq/error.h"
/* mq_outfile_create, _pwrite, _pread, _add_file, _truncate, _commit, _abort: the plug-in API */
#include "modelq/plugin.h"

struct mq_outfile;

/*
** Folder outputs (a Hugging Face model folder): the data files (shards) are created
** inside a temporary folder ".DIRNAME.modelq-tmp-PID" beside `dir`; more small files are added
** with mq_outfile_add_file(). Commit fsyncs everything and puts the folder in place: a plain
** rename, or an atomic exchange with an existing `dir` (renameat2 RENAME_EXCHANGE) whose old
** contents are then removed. Abort and signals remove every file and the temporary folder.
*/
/* Data files names[0..n) of sizes[k] bytes, addressed as one offset space (file k starts at the
** sum of the sizes before it); `extra` more bytes of small files count in the free-space check.
** An existing `dir` is replaced only under outpath.h's folder rule (replace_any = --force), checked
** here and again at commit. */
enum mq_status mq_outfile_create_in_dir(const char *dir, const char *const *names, const uint64_t *sizes, size_t n,
                                        uint64_t extra, bool replace_any, struct mq_outfile **out,
                                        struct mq_error *err);
/*
** A set of sibling files (a split GGUF: PREFIX-0000K-of-0000N.gguf), paths[0] first, all in one
** folder, addressed as one offset space like a folder output's files. They are written inside a
** hidden temporary folder ".NAME1.modelq-tmp-PID" beside them (NAME1 = part 1's name), so abort,
** the signal handlers and the next run after SIGKILL remove them as one. Each final path must be
** absent or a regular file (or a link), checked here and again at commit. Commit, after fsync
** of every part: an existing part 1 is removed first (an old part 1 never meets new parts), then
** parts N..2 are renamed into place and part 1 LAST, then the folder is fsynced. llama.cpp and
** modelq open a set from part 1, so a reader sees the old set, no set (part 1 missing: an error,
** never a wrong model), or the new set. A failed rename removes the new parts already moved.
*/
enum mq_status mq_outfile_create_set(const char *const *paths, const uint64_t *sizes, size_t n,
                                     struct mq_outfile **out, struct mq_error *err);
const char *mq_outfile_tmp_path(const struct mq_outfile *f);

#endif
