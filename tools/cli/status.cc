// agentburn status: every buffer folder under the root, and a total.
#include <dirent.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "event/codec.hpp"
#include "folders.hpp"
#include "output.hpp"

namespace agentburn::cli {

namespace {

struct FolderStatus {
  Folder folder;
  QueueSummary queue;
  std::string state;  // "live", "dead", "no database", "unreadable"
  std::string error;
};

std::string owner_text(const FolderStatus& f) {
  if (f.folder.holder > 0) return "pid " + std::to_string(f.folder.holder) + " (live)";
  if (f.folder.named_pid > 0) return "pid " + std::to_string(f.folder.named_pid) + " (gone)";
  return "none";
}

nlohmann::json to_json(const FolderStatus& f, std::int64_t now_ms) {
  nlohmann::json j = {{"folder", f.folder.path},
                      {"state", f.state},
                      {"pid", f.folder.holder > 0 ? f.folder.holder : f.folder.named_pid},
                      {"alive", f.folder.holder > 0},
                      {"pending", f.queue.pending},
                      {"pendingBytes", f.queue.pending_bytes},
                      {"deadLetters", f.queue.dead},
                      {"oldestPendingAgeMs", nullptr},
                      {"lastDeliveryAt", nullptr},
                      {"lastError", nullptr},
                      {"lastErrorAt", nullptr}};
  if (f.queue.oldest_ms) j["oldestPendingAgeMs"] = now_ms - *f.queue.oldest_ms;
  if (f.queue.last_delivery_ms) {
    j["lastDeliveryAt"] = detail::format_timestamp_ms(*f.queue.last_delivery_ms);
  }
  if (f.queue.last_error_ms) {
    j["lastError"] = f.queue.last_error;
    j["lastErrorAt"] = detail::format_timestamp_ms(*f.queue.last_error_ms);
  }
  if (f.queue.format_version) j["formatVersion"] = f.queue.format_version;
  if (!f.error.empty()) j["error"] = f.error;
  return j;
}

struct StatusOptions {
  Common common;
};

// Folders a client renamed corrupt-<name>-<time> because RocksDB could not open them.
std::vector<std::string> set_aside_folders(const std::string& root) {
  std::vector<std::string> out;
  if (DIR* d = opendir(root.c_str())) {
    while (dirent* e = readdir(d)) {
      if (std::strncmp(e->d_name, "corrupt-", 8) == 0) out.push_back(e->d_name);
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

int run_status(const StatusOptions& options) {
  const Common& common = options.common;
  const std::string root = common.resolved_root();
  std::vector<Folder> folders;
  std::vector<std::string> refused;
  Status s = list_folders(root, &folders, &refused);
  if (!s.ok()) return fail(kFailure, s.message());
  const std::int64_t now = detail::now_unix_ms();
  std::vector<FolderStatus> rows;
  QueueSummary total;
  int unreadable = 0;
  for (const auto& folder : folders) {
    FolderStatus f;
    f.folder = folder;
    f.state = folder.holder > 0 ? "live" : "dead";
    if (!has_database(folder.path)) {
      f.state = "no database";
    } else {
      std::unique_ptr<FolderDb> db;
      s = FolderDb::open_read_only(folder.path, &db);
      if (s.ok()) s = summarize(*db, &f.queue);
      if (!s.ok()) {
        f.state = "unreadable";
        f.error = s.message();
        ++unreadable;
      }
    }
    total.pending += f.queue.pending;
    total.pending_bytes += f.queue.pending_bytes;
    total.dead += f.queue.dead;
    if (f.queue.oldest_ms && (!total.oldest_ms || *f.queue.oldest_ms < *total.oldest_ms)) {
      total.oldest_ms = f.queue.oldest_ms;
    }
    rows.push_back(std::move(f));
  }
  if (common.json) {
    nlohmann::json out = {
        {"root", root}, {"folders", nlohmann::json::array()}, {"refused", refused},
        {"setAside", set_aside_folders(root)}};
    for (const auto& f : rows) out["folders"].push_back(to_json(f, now));
    out["total"] = {{"folders", rows.size()},
                    {"pending", total.pending},
                    {"pendingBytes", total.pending_bytes},
                    {"deadLetters", total.dead}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("buffer root: %s\n", root.c_str());
    if (rows.empty()) {
      std::printf("no buffer folders: nothing is waiting to be sent\n");
    } else {
      Table t({"folder", "owner", "pending", "bytes", "dead", "oldest", "delivered", "state"},
              {false, false, true, true, true, true, true, false});
      for (const auto& f : rows) {
        t.add({f.folder.name, owner_text(f), count(f.queue.pending), bytes(f.queue.pending_bytes),
               count(f.queue.dead), f.queue.oldest_ms ? age(now - *f.queue.oldest_ms) : "-",
               f.queue.last_delivery_ms ? age(now - *f.queue.last_delivery_ms) + " ago" : "never",
               f.error.empty() ? f.state : f.state + ": " + f.error});
      }
      t.add_footer(
          {"total: " + std::to_string(rows.size()) + (rows.size() == 1 ? " folder" : " folders"),
           "", count(total.pending), bytes(total.pending_bytes), count(total.dead),
           total.oldest_ms ? age(now - *total.oldest_ms) : "-", "", ""});
      t.print(stdout);
      for (const auto& f : rows) {
        if (!f.queue.last_error_ms) continue;
        std::printf("%s: last error %s ago: %s\n", f.folder.name.c_str(),
                    age(now - *f.queue.last_error_ms).c_str(), f.queue.last_error.c_str());
      }
    }
    for (const auto& why : refused) std::printf("left alone: %s\n", why.c_str());
    for (const auto& name : set_aside_folders(root)) {
      std::printf("set aside as corrupt by a client (set_aside_corrupt_buffer): %s/%s\n",
                  root.c_str(), name.c_str());
    }
  }
  return unreadable || !refused.empty() ? kPartial : kOk;
}

}  // namespace

void add_status(CLI::App& app, Command* run) {
  CLI::App* cmd = add_command(
      app, run, "status",
      "Every buffer folder: owner pid and whether it is alive, pending events and bytes, dead "
      "letters, the oldest pending event's age, when it last delivered, and its last error",
      std::make_shared<StatusOptions>(), run_status);
  set_examples(cmd,
               "  agentburn status\n  agentburn status --json | jq .total\n"
               "  agentburn status --root /srv/agent/buffer\n");
}

}  // namespace agentburn::cli
