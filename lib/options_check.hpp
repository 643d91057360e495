// The one place that knows the valid range of every option: Client::open and the C ABI's
// setters both ask it.
#pragma once

#include "agentburn/options.hpp"
#include "agentburn/status.hpp"

namespace agentburn::detail {

// kInvalid naming the first bad option and its range. `combined`: also check how options
// go together (retry_max_ms >= retry_initial_ms; plain http only to loopback unless
// allow_insecure_http), which Client::open does; a setter of one option checks it alone.
Status check_options(const Options& options, bool combined = true);

}  // namespace agentburn::detail
