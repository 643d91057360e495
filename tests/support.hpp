// Helpers shared by the tests: temporary folders and waiting on conditions with deadlines.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

namespace testing {

// The API key the test servers accept.
inline const char* const kTestKey = "test-key-0123456789";

// A fresh folder under $TMPDIR, removed with everything in it at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "agentburn-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `cond` until it holds or `timeout` passes; returns whether it held.
inline bool wait_until(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Folders directly below `root` (buffer folders of live or dead processes).
inline int count_folders(const std::string& root) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    n += e.is_directory() && e.path().filename() != "ledger";  // the root ledger is no folder
  }
  return n;
}

}  // namespace testing
