/* fuzz_safetensors.c - libFuzzer target: the safetensors reader, then a dry-run conversion. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input(data, size, ".safetensors");
    fuzz_open_and_convert(path);
    unlink(path);
    return 0;
}
