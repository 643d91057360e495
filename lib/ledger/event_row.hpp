// The ledger row of one stored event. A buffer folder's spend is its ledger rows plus the
// rows of the events it still holds (queued or dead): an event's row is added to the ledger
// in the same write that takes the event out of the folder (delivered, dropped by
// full_policy drop_oldest, a dead letter purged), so that each event is counted in exactly
// one of the two places, whenever the process is killed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agentburn/event.hpp"
#include "ledger/rows.hpp"

namespace agentburn::ledger {

// The UTC hour (since the Unix epoch) holding `unix_ms`.
std::int64_t hour_of(std::int64_t unix_ms);

// The row key (origin empty) and totals of an event, as track() stored it; `hour` is the hour
// of its timestamp.
std::string key_of(const Event& e, std::int64_t hour);
Totals totals_of(const Event& e, std::int64_t cost_nanos, bool unpriced);

// The same from the event's stored text. False when the text is not an event with a
// timestamp (nothing to count).
bool row_of_event(std::string_view event_json, std::string* key, Totals* totals);

}  // namespace agentburn::ledger
