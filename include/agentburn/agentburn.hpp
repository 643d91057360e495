// agentburn: the C++ API in one include.
#pragma once

#include "agentburn/client.hpp"
#include "agentburn/event.hpp"
#include "agentburn/options.hpp"
#include "agentburn/status.hpp"
#include "agentburn/version.h"
