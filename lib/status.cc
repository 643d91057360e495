#include "agentburn/status.hpp"

namespace agentburn {

const char* code_name(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "ok";
    case Status::Code::kInvalid: return "invalid";
    case Status::Code::kNoMemory: return "out of memory";
    case Status::Code::kStorage: return "storage error";
    case Status::Code::kFull: return "buffer full";
    case Status::Code::kLocked: return "buffer locked";
    case Status::Code::kNetwork: return "network error";
    case Status::Code::kHttp: return "HTTP error";
    case Status::Code::kAuth: return "authentication refused";
    case Status::Code::kTimeout: return "timed out";
    case Status::Code::kClosed: return "client closed";
    case Status::Code::kInternal: return "internal error";
    case Status::Code::kBudgetExceeded: return "budget exceeded";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  return std::string(code_name(code_)) + ": " + message_;
}

}  // namespace agentburn
