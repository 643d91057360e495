// What each stage of delivery costs per event, timed stage by stage on the same batches.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace bench {

struct StageConfig {
  std::string tmp;            // a folder of this run to work in
  std::string server_binary;  // agentburn-server
  std::size_t events = 50000;
  std::size_t batch = 1000;
};

// Runs every stage over `events` events in batches of `batch` and returns
// {"stages": [{"stage", "group", "us_per_event", "ms_per_batch"}...], ...}.
nlohmann::json stage_costs(const StageConfig& config);

}  // namespace bench
