#include "store/root.hpp"

#include <dirent.h>
#include <pwd.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "event/codec.hpp"

namespace agentburn::detail {

namespace {

constexpr const char* kLockName = "/agentburn.lock";

std::string errno_text(int e) { return std::strerror(e); }

std::string user_text(uid_t uid) {
  std::string out = "uid " + std::to_string(uid);
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd pw;
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found) {
    out += " (" + std::string(found->pw_name) + ")";
  }
  return out;
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Why the entry `st` of the root may not be used as a buffer folder, or "" when it may.
std::string folder_refusal(const struct stat& st) {
  if (S_ISLNK(st.st_mode)) return "a symbolic link";
  if (!S_ISDIR(st.st_mode)) return "";
  if (st.st_uid != geteuid()) return "owned by " + user_text(st.st_uid);
  if ((st.st_mode & 077) != 0) return "open to other users (mode " + mode_text(st.st_mode) + ")";
  return "";
}

}  // namespace

std::string default_buffer_root() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/agentburn/buffer";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/agentburn/buffer";
}

Status make_dirs(const std::string& path) {
  if (path.empty()) return Status::invalid("buffer_root: must not be empty");
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::storage("cannot create folder " + partial + ": " + errno_text(errno));
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::storage("buffer_root " + path + " is not a folder");
  }
  Status s = check_private_folder("buffer_root", path, st);
  if (!s.ok()) return s;
  if (access(path.c_str(), R_OK | W_OK | X_OK) != 0) {
    return Status::storage("buffer_root " + path + " is not writable: " + errno_text(errno));
  }
  return Status();
}

Status check_private_folder(const std::string& what, const std::string& path,
                            const struct stat& st) {
  uid_t me = geteuid();
  if (st.st_uid != me) {
    return Status::storage(what + " " + path + " is owned by " + user_text(st.st_uid) +
                           ", not by the current user, " + user_text(me) +
                           ": events and agent ids are kept only in a folder of one's own");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::storage(what + " " + path + " is writable by other users (mode " +
                           mode_text(st.st_mode) +
                           "): anyone could plant files there; chmod 700 it, or use another "
                           "folder");
  }
  return Status();
}

Status open_root(const std::string& root, int* fd) {
  int d = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0) return Status::storage("cannot open buffer_root " + root + ": " + errno_text(errno));
  struct stat st;
  if (fstat(d, &st) != 0) {
    int e = errno;
    close(d);
    return Status::storage("cannot read buffer_root " + root + ": " + errno_text(e));
  }
  Status s = check_private_folder("buffer_root", root, st);
  if (!s.ok()) {
    close(d);
    return s;
  }
  *fd = d;
  return Status();
}

FolderLock& FolderLock::operator=(FolderLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

void FolderLock::release() {
  if (fd_ >= 0) close(fd_);  // closing the last descriptor releases the flock
  fd_ = -1;
}

void FolderLock::forget_after_fork() {
  // The child's copy of the descriptor shares the parent's lock. Closing it in the child
  // drops the child's reference only; the parent (if alive) keeps the lock.
  release();
}

bool FolderLock::try_lock(const std::string& folder, FolderLock* out) {
  std::string path = folder + kLockName;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return false;
  }
  // The owner that adopted it may have removed the folder between our open and our flock.
  struct stat by_fd, by_path;
  if (fstat(fd, &by_fd) != 0 || stat(path.c_str(), &by_path) != 0 ||
      by_fd.st_ino != by_path.st_ino || by_fd.st_dev != by_path.st_dev) {
    close(fd);
    return false;
  }
  *out = FolderLock();
  out->fd_ = fd;
  return true;
}

Status FolderLock::create(const std::string& root, std::string* folder, FolderLock* out) {
  std::string id = new_uuid_v7().substr(24);
  std::string name = "p" + std::to_string(getpid()) + "-" + id;
  std::string staging = root + "/.new-" + name;
  std::string final_path = root + "/" + name;
  if (mkdir(staging.c_str(), 0700) != 0) {
    return Status::storage("cannot create buffer folder " + staging + ": " + errno_text(errno));
  }
  // The lock file appears under its name already locked (made and locked under another
  // name first), so that whoever finds it unlocked knows its creator is dead.
  std::string lock_path = staging + kLockName;
  std::string unlocked_path = lock_path + ".new";
  int fd = open(unlocked_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0 ||
      rename(unlocked_path.c_str(), lock_path.c_str()) != 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    remove_tree(staging);
    return Status::storage("cannot lock " + lock_path + ": " + errno_text(e));
  }
  if (rename(staging.c_str(), final_path.c_str()) != 0) {
    int e = errno;
    close(fd);
    remove_tree(staging);
    return Status::storage("cannot create buffer folder " + final_path + ": " + errno_text(e));
  }
  *out = FolderLock();
  out->fd_ = fd;
  *folder = final_path;
  return Status();
}

std::vector<std::string> list_buffer_folders(const std::string& root,
                                             std::vector<std::string>* refused) {
  std::vector<std::string> out;
  DIR* d = opendir(root.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || std::strncmp(e->d_name, "corrupt-", 8) == 0) continue;
    if (std::strcmp(e->d_name, "ledger") == 0) continue;  // the root ledger (root_ledger.hpp)
    std::string path = root + "/" + e->d_name;
    // lstat: a link to a folder elsewhere is not a folder of this root.
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    std::string why = folder_refusal(st);
    if (!why.empty()) {
      if (refused) refused->push_back(path + " is " + why);
      continue;
    }
    if (S_ISDIR(st.st_mode)) out.push_back(path);
  }
  closedir(d);
  return out;
}

void remove_stale_staging(const std::string& root) {
  DIR* d = opendir(root.c_str());
  if (!d) return;
  std::vector<std::string> staging, doomed;
  while (dirent* e = readdir(d)) {
    bool is_staging = std::strncmp(e->d_name, ".new-", 5) == 0;
    bool is_doomed = std::strncmp(e->d_name, ".del-", 5) == 0;
    if (!is_staging && !is_doomed) continue;
    // Only this user's own leftovers: anything else is left where it is.
    std::string path = root + "/" + e->d_name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || !folder_refusal(st).empty()) {
      continue;
    }
    (is_staging ? staging : doomed).push_back(path);
  }
  closedir(d);
  // A folder being discarded: whoever renamed it died before it was gone, or is removing it
  // right now; either way it holds nothing anyone needs.
  for (const auto& path : doomed) remove_tree(path);
  for (const auto& path : staging) {
    // Its lock file appears already locked: free means its creator died.
    FolderLock lock;
    if (FolderLock::try_lock(path, &lock)) {
      remove_tree(path);
      continue;
    }
    // No lock file yet: its creator died between mkdir and the lock, or is there right now;
    // it takes microseconds, so a minute tells the two apart.
    struct stat st;
    if (access((path + kLockName).c_str(), F_OK) != 0 && stat(path.c_str(), &st) == 0 &&
        std::time(nullptr) - st.st_mtime > 60) {
      remove_tree(path);
    }
  }
}

void discard_folder(const std::string& path) {
  // Renamed out of the way first: a process killed half-way through the removal leaves a
  // ".del-" folder that the next open clears, never a half-deleted database that looks live.
  std::size_t slash = path.rfind('/');
  std::string doomed = path.substr(0, slash + 1) + ".del-" + path.substr(slash + 1);
  if (rename(path.c_str(), doomed.c_str()) == 0) {
    remove_tree(doomed);
  } else {
    remove_tree(path);
  }
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool was_adopting(const std::string& folder) {
  return access((folder + "/adopting").c_str(), F_OK) == 0;
}

}  // namespace agentburn::detail
