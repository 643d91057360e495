// The one place that knows the valid range of every option: Client::open and the C ABI's
// setters both ask it.
#pragma once

#include "agentburn/options.hpp"
#include "agentburn/status.hpp"

namespace agentburn::detail {

// kInvalid naming the first bad option and its range.
Status check_options(const Options& options);

}  // namespace agentburn::detail
