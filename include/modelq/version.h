/*
** modelq/version.h - the library's version (CMakeLists.txt reads the project version from here).
*/
#ifndef MODELQ_VERSION_H
#define MODELQ_VERSION_H

#include "modelq/export.h"

#define MQ_VERSION_MAJOR 0
#define MQ_VERSION_MINOR 1
#define MQ_VERSION_PATCH 0
#define MQ_VERSION_STRING "0.1.0"
/* One number that grows with every release: 10000 * major + 100 * minor + patch. */
#define MQ_VERSION_NUMBER (MQ_VERSION_MAJOR * 10000 + MQ_VERSION_MINOR * 100 + MQ_VERSION_PATCH)

/* The version of the library actually linked ("0.1.0"), which may differ from the header's. */
MQ_API const char *mq_version_string(void);

#endif /* MODELQ_VERSION_H */
