/* sanitizer.h - BUILT_WITH_ASAN: 1 in an AddressSanitizer build (gcc or clang), where memory
** bounds measured on a child process do not hold (ASan's shadow memory and quarantine). */
#ifndef MODELQ_TEST_SANITIZER_H
#define MODELQ_TEST_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define BUILT_WITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUILT_WITH_ASAN 1
#endif
#endif
#ifndef BUILT_WITH_ASAN
#define BUILT_WITH_ASAN 0
#endif

#endif
