/* fuzz_gguf.c - libFuzzer target: the GGUF reader, then a dry-run conversion of what loads. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input(data, size, ".gguf");
    fuzz_open_and_convert(path);
    unlink(path);
    return 0;
}
