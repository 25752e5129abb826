/*
** options.h - private: reading a public options struct that may come from an older or newer
** header (the ABI-growth rule of include/modelq/convert.h and estimate.h).
**
** Every public options struct opens with `size_t struct_size`, which the caller's
** mq_X_options_init() macro sets to sizeof the struct as the CALLER's header defines it. Fields
** are only ever appended, so:
**   struct_size == library's sizeof   the same header: taken as is;
**   struct_size <  library's sizeof   an older header: its bytes are taken, the fields it does not
**                                     have keep their defaults (never read past the caller's struct);
**   struct_size >  library's sizeof   a newer header: accepted only when every byte this library
**                                     does not know is zero (the new fields left at their defaults,
**                                     as the Linux kernel's copy_struct_from_user does);
**   struct_size <  min_size (0 too)   not initialised by mq_X_options_init(): refused.
*/
#ifndef MODELQ_OPTIONS_H
#define MODELQ_OPTIONS_H

#include <stddef.h>

#include "modelq/error.h"

/*
** Copies the caller's `user` options into `full` (sizeof full_size, already holding the library's
** defaults) as described above; `what` names the struct in the error ("mq_convert_options").
** full's struct_size becomes full_size.
*/
enum mq_status mq_options_take(void *full, size_t full_size, const void *user, size_t min_size, const char *what,
                               struct mq_error *err);

/*
** The other direction, for mq_X_options_init_sized(): writes the library's `defaults` (def_size
** bytes, whose struct_size is already set to struct_size) into the caller's struct of struct_size
** bytes, zeroing what a newer header has beyond them.
*/
void mq_options_give(void *user, size_t struct_size, const void *defaults, size_t def_size);

#endif /* MODELQ_OPTIONS_H */
