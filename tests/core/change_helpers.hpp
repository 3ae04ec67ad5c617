// Test helper shared by the engine suites: a committed change as the server would send it.
#pragma once
#include <optional>
#include <string>

#include "core/protocol.hpp"

namespace syncline::testing {

inline ChangeMsg change(std::int64_t seq, std::string coll, std::string id, ChangeOp op, Json fields,
                        std::optional<Origin> origin = std::nullopt) {
  ChangeMsg c;
  c.seq = seq;
  c.collection = std::move(coll);
  c.id = std::move(id);
  c.op = op;
  c.version = seq;
  c.fields = std::move(fields);
  c.origin = std::move(origin);
  return c;
}

// A change's detail side (JSON text) as a value to compare: nullopt stays nullopt.
inline std::optional<Json> detail(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return Json::parse(*text);
}

}  // namespace syncline::testing
