/* bnb_out.h - helpers of the bitsandbytes folder writer exposed for tests (bnb_out.c). */
#ifndef MODELQ_FORMATS_BNB_OUT_H
#define MODELQ_FORMATS_BNB_OUT_H

#include <stddef.h>

/*
** Python's repr() of a float32 widened to double: the shortest digits that round-trip the double,
** fixed notation for decimal exponents -4..15 (with ".0" when integral), else "1.5e-05" style.
** This is how bitsandbytes' json.dumps writes nested_offset.
*/
void mq_py_float_repr(float f, char *out, size_t cap);

#endif
