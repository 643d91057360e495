// agentburn events and agentburn dead-letters: what waits in the folders, and the letters the
// server refused, requeued or purged.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "folders.hpp"
#include "output.hpp"
#include "store/buffer_internal.hpp"

namespace agentburn::cli {

namespace {

// One dead letter as a JSON line: its folder, the reason, and the event (as text when it does
// not parse).
void print_dead_line(const Folder& folder, const StoredItem& item) {
  auto event = nlohmann::json::parse(item.event, nullptr, false);
  nlohmann::json line = {{"folder", folder.name},
                         {"reason", item.reason},
                         {"event", event.is_discarded() ? nlohmann::json(item.event) : event}};
  std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

struct EventsOptions {
  Common common;
  bool dead = false;
  std::size_t limit = 100;
  std::string agent;
};

std::string agent_of(const std::string& event_json) {
  auto j = nlohmann::json::parse(event_json, nullptr, false);
  return j.is_object() && j.contains("agentId") && j["agentId"].is_string()
             ? j["agentId"].get<std::string>()
             : "";
}

// Calls `each` for the items of every readable folder; the folders it could not read are
// warned about and counted in the result.
int for_each_item(const std::string& root, bool dead,
                  const std::function<bool(const Folder&, StoredItem&&)>& each, int* unreadable) {
  std::vector<Folder> folders;
  std::vector<std::string> refused;
  Status s = list_folders(root, &folders, &refused);
  if (!s.ok()) return fail(kFailure, s.message());
  for (const auto& why : refused) warn("left alone: " + why), ++*unreadable;
  bool more = true;
  for (const auto& folder : folders) {
    if (!more || !has_database(folder.path)) continue;
    std::unique_ptr<FolderDb> db;
    s = FolderDb::open_read_only(folder.path, &db);
    if (s.ok())
      s = read_items(*db, dead,
                     [&](StoredItem&& item) { return more = each(folder, std::move(item)); });
    if (!s.ok()) warn(s.message()), ++*unreadable;
  }
  return kOk;
}

int run_events(const EventsOptions& o) {
  std::size_t shown = 0, skipped = 0;
  int unreadable = 0;
  int rc = for_each_item(
      o.common.resolved_root(), o.dead,
      [&](const Folder& folder, StoredItem&& item) {
        if (!o.agent.empty() && agent_of(item.event) != o.agent) return true;
        if (o.limit && shown >= o.limit) {
          ++skipped;
          return true;
        }
        ++shown;
        if (!o.dead) {
          std::printf("%s\n", item.event.c_str());
        } else {
          print_dead_line(folder, item);
        }
        return true;
      },
      &unreadable);
  if (rc != kOk) return rc;
  if (skipped) {
    warn(std::to_string(skipped) + " more not shown (--limit " + std::to_string(o.limit) +
         "; --limit 0 shows all)");
  }
  return unreadable ? kPartial : kOk;
}

// --- dead-letters ------------------------------------------------------------------------

struct DeadOptions {
  Common common;
  std::string action;  // list, requeue, purge
  std::string agent;
};

int list_dead(const DeadOptions& o) {
  int unreadable = 0;
  Table t({"folder", "agent", "model", "cost", "reason"}, {false, false, false, true, false});
  std::size_t n = 0;
  int rc = for_each_item(
      o.common.resolved_root(), true,
      [&](const Folder& folder, StoredItem&& item) {
        auto event = nlohmann::json::parse(item.event, nullptr, false);
        std::string agent = agent_of(item.event);
        if (!o.agent.empty() && agent != o.agent) return true;
        ++n;
        if (o.common.json) {
          print_dead_line(folder, item);
          return true;
        }
        std::string model = event.is_object() && event.value("model", nlohmann::json()).is_string()
                                ? event["model"].get<std::string>()
                                : "";
        double cost = event.is_object() && event.value("costUsd", nlohmann::json()).is_number()
                          ? event["costUsd"].get<double>()
                          : 0;
        t.add({folder.name, agent, model, usd(ledger::to_nanos(cost)), item.reason});
        return true;
      },
      &unreadable);
  if (rc != kOk) return rc;
  if (!o.common.json) {
    if (n) {
      t.print(stdout);
    }
    std::printf("%zu dead letters%s\n", n, o.agent.empty() ? "" : (" of agent " + o.agent).c_str());
  }
  return unreadable ? kPartial : kOk;
}

// The next sequence number free in a folder: past every queued key and dead letter, and past
// what the record of a clean close says was used.
std::uint64_t next_seq(const FolderDb& db) {
  std::uint64_t next = 1;
  for (const char* name : {"default", "dead"}) {
    auto* cf = db.cf(name);
    if (!cf) continue;
    std::unique_ptr<rocksdb::Iterator> it(db.db()->NewIterator(rocksdb::ReadOptions(), cf));
    it->SeekToLast();
    if (it->Valid()) next = std::max(next, detail::decode_seq(it->key()) + 1);
  }
  std::string counters;
  unsigned long long saved = 0;
  if (auto* meta = db.cf("meta");
      meta && db.db()->Get(rocksdb::ReadOptions(), meta, "counters", &counters).ok() &&
      std::sscanf(counters.c_str(), "v1 %llu", &saved) == 1) {
    next = std::max<std::uint64_t>(next, saved);
  }
  return next;
}

// Requeues or purges the matching dead letters of one folder no process holds, in one write.
// The record of a clean close goes in the same write: the next client counts the folder again.
Status change_folder(const Folder& folder, const DeadOptions& o, std::size_t* changed) {
  detail::FolderLock lock;
  if (!detail::FolderLock::try_lock(folder.path, &lock)) {
    long pid = lock_holder(folder.path);
    return Status::locked("left alone: " + folder.path + " is held by " +
                          (pid > 0 ? "pid " + std::to_string(pid) : "a running process") +
                          "; stop it (or let it " + o.action + " its own dead letters) and retry");
  }
  std::unique_ptr<FolderDb> db;
  Status s = FolderDb::open_writable(folder.path, &db);
  if (!s.ok()) return s;
  auto* dead = db->cf("dead");
  auto* queue = db->cf("default");
  auto* meta = db->cf("meta");
  auto* ledger_cf = db->cf("ledger");
  if (!dead || !queue || !meta) return Status();
  rocksdb::WriteBatch wb;
  detail::LedgerFold fold;  // purged letters keep their spend in the ledger
  std::uint64_t seq = next_seq(*db);
  s = read_items(*db, true, [&](StoredItem&& item) {
    if (!o.agent.empty() && agent_of(item.event) != o.agent) return true;
    detail::SeqKey key(item.seq);
    wb.Delete(dead, key.slice());
    if (o.action == "requeue") {
      wb.Put(queue, detail::SeqKey(seq++).slice(), item.event);
    } else {
      fold.add(item.event);
    }
    ++*changed;
    return true;
  });
  if (!s.ok() || *changed == 0) return s;
  if (ledger_cf) fold.write(&wb, ledger_cf);
  wb.Delete(meta, "counters");
  rocksdb::WriteOptions sync;
  sync.sync = true;
  auto st = db->db()->Write(sync, &wb);
  if (!st.ok()) {
    *changed = 0;
    return Status::storage("cannot change " + folder.path + ": " + st.ToString());
  }
  return Status();
}

int change_dead(const DeadOptions& o) {
  std::vector<Folder> folders;
  std::vector<std::string> refused;
  Status s = list_folders(o.common.resolved_root(), &folders, &refused);
  if (!s.ok()) return fail(kFailure, s.message());
  for (const auto& why : refused) warn("left alone: " + why);
  std::size_t total = 0;
  int failed = 0;
  for (const auto& folder : folders) {
    if (!has_database(folder.path)) continue;
    std::size_t changed = 0;
    s = change_folder(folder, o, &changed);
    if (!s.ok()) {
      warn(s.message());
      ++failed;
    }
    total += changed;
  }
  const char* verb = o.action == "requeue" ? "requeued" : "purged";
  if (o.common.json) {
    std::printf("%s\n",
                nlohmann::json({{verb, total}, {"foldersLeftAlone", failed}}).dump().c_str());
  } else {
    std::printf("%zu dead letters %s%s\n", total, verb,
                o.action == "requeue" ? " (the next client with an endpoint sends them)" : "");
  }
  if (failed || !refused.empty()) return total ? kPartial : kFailure;
  return kOk;
}

int run_dead(const DeadOptions& o) {
  return o.action == "list" ? list_dead(o) : change_dead(o);
}

}  // namespace

void add_events(CLI::App& app, Command* run) {
  auto o = std::make_shared<EventsOptions>();
  CLI::App* cmd = add_command(app, run, "events",
                              "Pending events (or dead letters, with --dead), one JSON a line, "
                              "in arrival order per folder",
                              o, run_events);
  cmd->add_flag("--dead", o->dead, "Dead letters instead: {\"folder\", \"reason\", \"event\"}");
  cmd->add_option("--limit", o->limit, "At most this many lines (default 100; 0: all)");
  cmd->add_option("--agent", o->agent, "Only the events of this agentId");
  set_examples(cmd,
               "  agentburn events --limit 10\n  agentburn events --dead | jq .reason\n"
               "  agentburn events --agent agt_123 --limit 0 | wc -l\n");
}

void add_dead_letters(CLI::App& app, Command* run) {
  auto o = std::make_shared<DeadOptions>();
  CLI::App* cmd = add_command(
      app, run, "dead-letters",
      "Events the server refused: list them, requeue them (put back in the queue, sent by the "
      "next client with an endpoint or `agentburn sync`) or purge them for good",
      o, run_dead);
  cmd->add_option("action", o->action, "list, requeue or purge")
      ->required()
      ->check(CLI::IsMember({"list", "requeue", "purge"}));
  cmd->add_option("--agent", o->agent, "Only the dead letters of this agentId");
  set_examples(cmd,
               "  agentburn dead-letters list\n  agentburn dead-letters requeue --agent agt_123\n"
               "  agentburn dead-letters purge\n"
               "requeue and purge change only folders no running process holds.\n");
}

}  // namespace agentburn::cli
