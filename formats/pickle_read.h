/*
** pickle_read.h - a restricted unpickler for the data.pkl of a PyTorch state dict.
**
** It interprets the pickle opcodes a state dict written by torch.save uses (protocols 2-5) over a
** value model of its own; it never imports, calls or executes anything. The only names it knows
** are those of a state dict: collections.OrderedDict, torch._utils._rebuild_tensor_v2,
** torch._utils._rebuild_parameter, torch.Size and the typed storage classes
** (torch.FloatStorage ...), and those only in the roles a state dict gives them (REDUCE of a
** rebuild function on its exact arguments; BUILD of an OrderedDict's _metadata; storage classes
** inside the persistent id ('storage', class, key, location, numel)). Any other global, opcode,
** REDUCE, BUILD, INST, OBJ or NEWOBJ is refused with a one-line error naming it, and every length,
** index and depth is checked against the bytes left and a cap before it is used.
*/
#ifndef MODELQ_PICKLE_READ_H
#define MODELQ_PICKLE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "modelq/dtype.h"
#include "modelq/error.h"
#include "model_impl.h"

/* One tensor of the state dict: a view of storage `key`. */
struct mq_pickle_tensor {
    const char *name;      /* the state dict key, NUL-terminated, valid UTF-8 */
    const char *key;       /* storage key: the zip entry <archive>/data/<key> */
    enum mq_dtype dtype;   /* from the storage class */
    uint64_t storage_numel; /* elements the persistent id declares */
    uint64_t offset;       /* storage_offset, elements */
    uint32_t ndim;
    int64_t shape[MQ_MAX_DIMS];  /* as pickled: the caller refuses negative values */
    int64_t stride[MQ_MAX_DIMS];
};

struct mq_pickle_arena;

struct mq_state_dict {
    struct mq_pickle_tensor *t; /* in the pickle's (insertion) order */
    size_t n;
    struct mq_pickle_arena *arena; /* owns every string and array above */
};

/*
** Interprets the pickle p[0, n) and returns its state dict in *sd (free it with
** mq_state_dict_free, also after a failure). `where` names the pickle in messages
** ("model.bin: archive/data.pkl").
*/
enum mq_status mq_pickle_state_dict(const uint8_t *p, size_t n, const char *where, struct mq_state_dict *sd,
                                    struct mq_error *err);
void mq_state_dict_free(struct mq_state_dict *sd);

/* The typed storage class "torch.<name>" as a dtype ("FloatStorage" -> F32); false when unknown. */
bool mq_pickle_storage_dtype(const char *name, enum mq_dtype *out);

#endif /* MODELQ_PICKLE_READ_H */
