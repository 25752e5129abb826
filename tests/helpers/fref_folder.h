/*
** fref_folder.h - the float64 reference decoder (family_ref.h) bound to a checkpoint folder: its
** config.json and its BF16 tensors, read with modelq's reader and widened to float (bf16_read.h;
** BF16 values are exact in float, so the reference sees the checkpoint's own numbers).
*/
#ifndef MODELQ_TEST_FREF_FOLDER_H
#define MODELQ_TEST_FREF_FOLDER_H

#include "family_ref.h"

#define FREF_FOLDER_MAX_TENSORS 512

struct fref_folder {
    struct fref_model M;          /* what the reference runs (dref_forward(&M.cfg, &M.w, ...)) */
    struct mq_model *m;           /* the opened checkpoint */
    float *owned[FREF_FOLDER_MAX_TENSORS];
    int n_owned;
};

/* Opens `dir` and binds the reference; a missing tensor, a non-BF16 one or a shape other than
 * config.json implies fails the test. */
void fref_folder_load(const char *dir, struct fref_folder *R);
void fref_folder_free(struct fref_folder *R);

#endif
