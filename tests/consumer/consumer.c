#include <agentburn/agentburn.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  printf("agentburn %s (ABI %d)\n", ab_version(), ab_abi_version());
  return ab_abi_version() == AB_ABI_VERSION && strcmp(ab_version(), AB_VERSION_STRING) == 0 ? 0 : 1;
}
