/* version.c - the linked library's version (modelq/version.h). */
#include "modelq/version.h"

const char *mq_version_string(void) { return MQ_VERSION_STRING; }
