/*
** modelq/modelq.h - everything a program that uses libmodelq includes.
**
**   #include <modelq/modelq.h>
**   cc prog.c $(pkg-config --cflags --libs modelq)
**
** Start with mq_convert() (convert.h), mq_model_open() (model.h), mq_estimate() (estimate.h) and
** mq_verify() (convert.h). Every call that can fail returns an enum mq_status and fills a
** struct mq_error (error.h); the library never prints and never exits.
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
