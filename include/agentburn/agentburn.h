/*
 * agentburn: durable, offline-first cost tracking for AI agents. The C ABI (C99).
 *
 * Link with -lagentburn (pkg-config agentburn). Every function is safe to call from any
 * thread. No function throws or aborts; fallible ones return AB_OK (0) or a negative AB_E*
 * code, and ab_last_error() then describes the failure.
 */
#ifndef AGENTBURN_H
#define AGENTBURN_H

#include <stddef.h>

#include "agentburn/version.h"

#if defined(AB_BUILDING_LIBRARY)
#define AB_API __attribute__((visibility("default")))
#else
#define AB_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version as "MAJOR.MINOR.PATCH"; static storage. */
AB_API const char *ab_version(void);

/* The ABI number the library was built with (AB_ABI_VERSION); compare it with the header's
 * AB_ABI_VERSION to detect a mismatch at run time. */
AB_API int ab_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* AGENTBURN_H */
