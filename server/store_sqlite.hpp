// Layer: server (internal to store*.cpp). Small SQLite helpers shared by the store's write path
// (store.cpp) and read path (store_read.cpp).
#pragma once
#include <sqlite3.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/protocol.hpp"
#include "store.hpp"

namespace syncline::server::sqlite_util {

inline std::string col_text(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

inline bool col_null(sqlite3_stmt* s, int i) { return sqlite3_column_type(s, i) == SQLITE_NULL; }

inline void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

struct Reset {
  sqlite3_stmt* s;
  ~Reset() {
    if (s) {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  }
};

// The SQL expression for a scoped field, `json_extract(fields, '$.a.b')`. The index created at
// open and the snapshot query must spell it identically, or SQLite does not use the index. Path
// parts match [A-Za-z_][A-Za-z0-9_]* (the filter grammar), so they are safe in SQL text.
inline std::string scope_field_sql(const std::vector<std::string>& path) {
  std::string sql = "json_extract(fields, '$";
  for (const auto& part : path) sql += "." + part;
  return sql + "')";
}

inline Error internal(const std::string& what, sqlite3* db) {
  return make_error(codes::kInternal, what + ": " + (db ? sqlite3_errmsg(db) : "sqlite error"));
}

}  // namespace syncline::server::sqlite_util
