// agentburn: errors as values.
//
// Every fallible call of the C++ API returns a Status (or a Result<T>). The public API never
// throws. Codes match the C ABI's AB_E* values one to one, so a Status crosses the ABI as is.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace agentburn {

class [[nodiscard]] Status {
 public:
  // Values are pinned: they are the C ABI's result codes (AB_OK, AB_EINVALID, ...).
  enum class Code : int {
    kOk = 0,
    kInvalid = -1,   // bad event, argument or option
    kNoMemory = -2,  // allocation failed
    kStorage = -3,   // the on-disk buffer failed (I/O error, corruption, unknown format)
    kFull = -4,      // the disk cap was reached and the policy is `reject`
    kLocked = -5,    // the buffer folder is held by another process
    kNetwork = -6,   // the server could not be reached
    kHttp = -7,      // the server answered with an unexpected status
    kAuth = -8,      // the server refused the API key (401/403)
    kTimeout = -9,   // the deadline passed before the work was done (not a failure)
    kClosed = -10,   // the client is closed
    kInternal = -11,  // a bug in agentburn: please report it
    kBudgetExceeded = -12  // a reservation would take a block budget past its limit
  };

  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status invalid(std::string m) { return Status(Code::kInvalid, std::move(m)); }
  static Status storage(std::string m) { return Status(Code::kStorage, std::move(m)); }
  static Status full(std::string m) { return Status(Code::kFull, std::move(m)); }
  static Status locked(std::string m) { return Status(Code::kLocked, std::move(m)); }
  static Status network(std::string m) { return Status(Code::kNetwork, std::move(m)); }
  static Status http(std::string m) { return Status(Code::kHttp, std::move(m)); }
  static Status auth(std::string m) { return Status(Code::kAuth, std::move(m)); }
  static Status timeout(std::string m) { return Status(Code::kTimeout, std::move(m)); }
  static Status closed(std::string m) { return Status(Code::kClosed, std::move(m)); }
  static Status internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
  static Status budget_exceeded(std::string m) {
    return Status(Code::kBudgetExceeded, std::move(m));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // Human-readable detail: names the field or resource and why. Empty when ok().
  const std::string& message() const { return message_; }
  // "invalid: costUsd: must be a finite number >= 0, got -1" style text.
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Short static name of a code ("ok", "invalid", "full", ...).
const char* code_name(Status::Code code);

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.ok()) status_ = Status::internal("Result built from an OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  // Only when ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace agentburn
