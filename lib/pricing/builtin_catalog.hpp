// The price catalog compiled into the library: data/prices.json as it was at build time,
// embedded by cmake/embed_catalog.cmake. No file is read at run time.
#pragma once

#include <string_view>

namespace agentburn::pricing {

// The text of data/prices.json (agentburn-prices/1, see data/README.md).
std::string_view builtin_catalog_text();

}  // namespace agentburn::pricing
