// The C ABI over the C++ core. No logic of its own: argument checks, conversions, and the
// guarantee that no C++ exception crosses into C.
#include "agentburn/agentburn.h"

extern "C" {

const char* ab_version(void) { return AB_VERSION_STRING; }

int ab_abi_version(void) { return AB_ABI_VERSION; }

}  // extern "C"
