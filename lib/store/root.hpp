// The buffer root: one folder per open buffer, each held with flock(2) for the life of its
// owner, so that a folder whose lock is free belongs to a process that died.
#pragma once

#include <sys/stat.h>

#include <string>
#include <vector>

#include "agentburn/status.hpp"

namespace agentburn::detail {

// $XDG_DATA_HOME/agentburn/buffer, or ~/.local/share/agentburn/buffer.
std::string default_buffer_root();

// mkdir -p with mode 0700 for the folders it creates, then check_private_folder() on the
// last one: the buffer root must belong to the current user and be writable by no one else.
Status make_dirs(const std::string& path);

// Whether `st` (of the folder `path`, called `what` in messages) is a folder owned by the
// current user that no other user may write to (no group or other write bit). The error names
// the path, its owner and its mode.
Status check_private_folder(const std::string& what, const std::string& path,
                            const struct stat& st);

// The root opened as a directory descriptor (O_DIRECTORY, close-on-exec) after the checks of
// check_private_folder() on that very descriptor: files in the root are then opened with
// openat() relative to it, without following links.
Status open_root(const std::string& root, int* fd);

// An exclusive flock on <folder>/agentburn.lock. Movable; releases on destruction.
class FolderLock {
 public:
  FolderLock() = default;
  FolderLock(FolderLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FolderLock& operator=(FolderLock&& o) noexcept;
  ~FolderLock() { release(); }
  bool held() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void release();
  // Drops this process's descriptor without unlocking for others that share it: what a
  // child does after fork(), so that it never keeps its parent's folder locked.
  void forget_after_fork();

  // Tries to take the lock of an existing folder without waiting. False when another process
  // holds it, when the folder vanished, or when it was replaced while we waited.
  static bool try_lock(const std::string& folder, FolderLock* out);
  // Creates a new folder under `root`, locked, named p<pid>-<random>. It is built under a
  // dot-name and renamed into place once locked, so no other process can adopt it half-made.
  static Status create(const std::string& root, std::string* folder, FolderLock* out);

 private:
  int fd_ = -1;
};

// Names of candidate folders of other processes under `root` (not dot-names, not set-aside).
// Only real folders (not links) owned by the current user with no access for anyone else
// (mode 0700) are candidates: each other entry that looks like a folder is described in
// `*refused` (when given), so the caller can say why it was left alone.
std::vector<std::string> list_buffer_folders(const std::string& root,
                                             std::vector<std::string>* refused = nullptr);

// Removes the half-made folders (".new-*") of processes that died while creating one, and
// the ".del-*" folders of processes that died while removing one.
void remove_stale_staging(const std::string& root);

// Removes a buffer folder, atomically as far as other processes can see.
void discard_folder(const std::string& path);

// Whether the process of `folder` was adopting other folders when it stopped (the "adopting"
// file Buffer::adopt_all keeps while it adopts).
bool was_adopting(const std::string& folder);


// rm -rf.
void remove_tree(const std::string& path);

}  // namespace agentburn::detail
