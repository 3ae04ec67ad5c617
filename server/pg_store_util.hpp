// Layer: server (internal to pg_store*.cpp). Small libpq helpers shared by the PostgreSQL
// store's write path (pg_store.cpp) and read path (pg_store_read.cpp). Results are in text
// format: every value is read as its text form.
#pragma once
#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/json_bounded.hpp"
#include "core/protocol.hpp"

namespace syncline::server::pg_util {

inline std::string col_text(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}
inline bool col_null(const PGresult* r, int row, int col) { return PQgetisnull(r, row, col) != 0; }
inline std::int64_t col_int(const PGresult* r, int row, int col) {
  return col_null(r, row, col) ? 0 : std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}

// A PostgreSQL array literal of text elements, {"a",NULL,...}: the parameter of a statement
// whose text stays the same for any number of rows (prepared once, unnest($n::text[])).
template <typename Param>
std::string array_literal(const std::vector<Param>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    if (!values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// Stored JSON was bounded when it was written (limits.max_json_depth, at most 512); a damaged
// row reads as unreadable instead of as a value whose copies and dumps would recurse past the
// stack.
constexpr std::size_t kMaxStoredJsonDepth = 512;
inline Json parse_stored(const std::string& text) { return parse_json_bounded(text, kMaxStoredJsonDepth); }

// The SQL expression for a scoped field, `(fields::jsonb #>> '{a,b}')`: the text of the string
// at that path. The index created at open and the snapshot query spell it identically, or the
// planner does not use the index. Path parts match [A-Za-z_][A-Za-z0-9_]* (the filter grammar),
// so they are safe in SQL text.
inline std::string scope_field_sql(const std::vector<std::string>& path) {
  std::string sql = "(fields::jsonb #>> '{";
  for (std::size_t i = 0; i < path.size(); ++i) sql += (i ? "," : "") + path[i];
  return sql + "}')";
}

// What the scope index holds of a field: its first kScopePrefixChars characters. A btree entry
// must stay under ~2,700 bytes, and a field may be longer; equal values have equal prefixes, so
// the index narrows the read and the read rule, checked on every row read, decides. A document
// holding an escaped U+0000 anywhere cannot be cast to jsonb at all: it is indexed as NULL, and
// the scoped read takes NULL entries too (scope_match_sql), so such documents are always read
// and the rule decides.
constexpr int kScopePrefixChars = 500;
inline std::string scope_index_sql(const std::vector<std::string>& path) {
  return "(CASE WHEN strpos(fields, '\\u0000') > 0 THEN NULL ELSE left(" + scope_field_sql(path) + ", " +
         std::to_string(kScopePrefixChars) + ") END)";
}
// A scoped snapshot chunk ($1 collection, $2 the claim value, $3 after this id, $4 limit): the
// documents whose indexed prefix equals the value's, and those indexed as NULL, each read in id
// order through the scope index and merged.
inline std::string scope_snapshot_sql(const std::vector<std::string>& path) {
  const std::string e = scope_index_sql(path);
  const std::string part = "SELECT id, version, fields FROM documents WHERE collection = $1 AND deleted = 0 AND ";
  return "SELECT id, version, fields FROM ((" + part + e + " = left($2, " + std::to_string(kScopePrefixChars) +
         ") AND id > $3 ORDER BY id LIMIT $4) UNION ALL (" + part + e +
         " IS NULL AND id > $3 ORDER BY id LIMIT $4)) s ORDER BY id LIMIT $4";
}

}  // namespace syncline::server::pg_util
