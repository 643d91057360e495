// A small tmpfs mounted for a test (root only), unmounted at the end of the scope (also on
// failure). The calling thread first moves to a mount namespace of its own (threads and
// processes it starts later share it), so that even a crashed test leaves no mount behind:
// the namespace dies with the process.
#pragma once

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace testing {

class Tmpfs {
 public:
  // `own_namespace_required`: without a mount namespace of its own, do not mount at all.
  Tmpfs(const std::string& dir, const std::string& size, bool own_namespace_required = false)
      : dir_(dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (unshare(CLONE_NEWNS) == 0) {
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);  // nothing propagates out
    } else if (own_namespace_required) {
      error_ = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
      return;
    }
    std::string data = "size=" + size + ",mode=0700";
    if (mount("tmpfs", dir.c_str(), "tmpfs", 0, data.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::string("mount: ") + std::strerror(errno);
    }
  }
  ~Tmpfs() {
    if (mounted_ && umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace testing
