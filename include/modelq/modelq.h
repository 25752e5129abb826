/*
** modelq/modelq.h - everything a program that uses libmodelq includes.
**
**   #include <modelq/modelq.h>
**   cc prog.c $(pkg-config --cflags --libs modelq)
**
** Start with mq_convert() (convert.h), mq_model_open() (model.h), mq_estimate() (estimate.h) and
** mq_verify() (convert.h). Every call that can fail returns an enum mq_status and fills a
** struct mq_error (error.h); the library never prints and never exits.
** A model is opaque: read it with the accessors of model.h (mq_model_tensor(), mq_tensor_name() ...).
** Options structs are set up with their _init() macro (mq_convert_options_init ...), which records
** their size so that they can grow (convert.h).
** Writing an output format (a plug-in) uses modelq/plugin.h, which this header does not include.
*/
#ifndef MODELQ_MODELQ_H
#define MODELQ_MODELQ_H

#include "modelq/codec.h"
#include "modelq/convert.h"
#include "modelq/dtype.h"
#include "modelq/error.h"
#include "modelq/estimate.h"
#include "modelq/export.h"
#include "modelq/half.h"
#include "modelq/meta.h"
#include "modelq/model.h"
#include "modelq/qstats.h"
#include "modelq/quant.h"
#include "modelq/report.h"
#include "modelq/target.h"
#include "modelq/testing.h"
#include "modelq/version.h"

#endif /* MODELQ_MODELQ_H */
