/*
** modelq/export.h - MQ_API marks the functions of libmodelq's public interface.
**
** The library is compiled with -fvisibility=hidden: only what a public header declares with
** MQ_API is exported from libmodelq.so; everything else (readers, writers, the pipeline) stays
** internal, whatever its name.
*/
#ifndef MODELQ_EXPORT_H
#define MODELQ_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define MQ_API __attribute__((visibility("default")))
#else
#define MQ_API
#endif

#endif /* MODELQ_EXPORT_H */
