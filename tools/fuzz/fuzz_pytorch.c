/* fuzz_pytorch.c - libFuzzer target: the PyTorch reader (zip container, restricted unpickler,
** storage views), then a dry-run conversion that reads every tensor through its view. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_input(data, size, ".bin");
    fuzz_open_and_convert(path);
    unlink(path);
    return 0;
}
