// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Live queries (where + orderBy + limit) and grouped aggregates, maintained incrementally.
//
// Complexity: a LiveQuery keeps every matching document in two ordered sets, the visible
// window (the first `limit` entries) and the rest. One change costs O(log n) for n matching
// documents (erase + insert, plus at most one entry moved across the window boundary); the
// initial build is O(n log n). Nothing rescans the collection after that. A change reports
// "result changed" only if the ordered window (ids, order or a member's fields) differs.
// GroupedAggregate keeps each document's last contribution, so one change is O(log g) for
// g groups.
//
// Sort order of field values: missing < null < false < true < numbers < strings <
// arrays/objects (by serialised text); ties are broken by document id ascending.
// Details: numbers compare as doubles, except that integers compare exactly with integers and
// with doubles (so the order stays a strict weak order for huge integers); strings and the
// serialised text compare by bytes. Descending reverses the field order (missing sorts last)
// but not the id tie-break; ordering by "id" descending is by id descending.
// on_change() trusts `before` only to tell whether a window member's fields changed; which
// documents match is tracked by the query itself.
//
//   LiveQuery q({"bills", *Filter::parse("status=eq.open"), OrderBy{{"total"}, true}, 10});
//   q.on_change("b1", nullptr, &fields);  // true: b1 entered the top 10
//   q.result_ids();                       // {"b1"}
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/filter.hpp"
#include "core/json.hpp"

namespace syncline {

struct OrderBy {
  std::vector<std::string> path;  // field split on '.'; "id" orders by document id
  bool descending = false;
  bool operator==(const OrderBy&) const = default;
};

struct QuerySpec {
  std::string collection;
  Filter where;
  std::optional<OrderBy> order_by;  // none: by id ascending
  std::optional<std::size_t> limit;
};

// Parses "field" / "field.asc" / "field.desc" (also "-field" for descending). A trailing
// ".asc"/".desc" is always the direction (a bare "desc" is a field); "-" with a suffix is an
// error. Errors: code "invalid_query", field "orderBy".
Result<OrderBy> parse_order_by(std::string_view text);

// Total order of JSON values used for sorting (see header comment). nullptr = missing.
int compare_values(const Json* a, const Json* b);

class LiveQuery {
 public:
  explicit LiveQuery(QuerySpec spec);

  const QuerySpec& spec() const { return spec_; }

  // A document of spec().collection changed in the visible view. before/after are its fields
  // (nullptr when absent or deleted). Returns true when the query's result changed.
  bool on_change(const std::string& id, const Json* before, const Json* after);

  // Ids in result order (at most `limit`).
  std::vector<std::string> result_ids() const;
  // Whether the document is in the result (inside the limit). O(1) on average.
  bool in_result(const std::string& id) const;
  // Number of matching documents, ignoring the limit.
  std::size_t total_matches() const { return window_.size() + rest_.size(); }

 private:
  struct Entry {
    Json key;          // discarded value = field missing (always discarded when ordering by id)
    std::string text;  // key.dump() when key is an array or object (compared by that text)
    std::string id;
  };
  // Holds the order by value (not a pointer to the query) so a LiveQuery can be moved/copied.
  struct EntryLess {
    bool by_id = true;
    bool descending = false;
    bool operator()(const Entry& a, const Entry& b) const;
  };
  Entry make_entry(const std::string& id, const Json& fields) const;
  bool insert_entry(Entry e);        // returns true if it landed in the window
  bool erase_entry(const Entry& e);  // returns true if it was in the window
  bool in_window(const Entry& e) const;  // e must be in window_ or rest_

  QuerySpec spec_;
  std::size_t limit_;  // SIZE_MAX without a limit
  EntryLess less_;
  std::set<Entry, EntryLess> window_;
  std::set<Entry, EntryLess> rest_;
  std::unordered_map<std::string, Entry> entries_;  // id -> current entry (matching docs only)
};

struct GroupTotals {
  std::int64_t count = 0;
  double sum = 0;
  bool operator==(const GroupTotals&) const = default;
};

struct AggregateSpec {
  std::string collection;
  Filter where;
  std::vector<std::string> group_by;               // empty: one group "" for everything
  std::optional<std::vector<std::string>> sum_of;  // numeric field to sum; non-numbers add 0
};

class GroupedAggregate {
 public:
  explicit GroupedAggregate(AggregateSpec spec);
  const AggregateSpec& spec() const { return spec_; }
  // Same contract as LiveQuery::on_change.
  bool on_change(const std::string& id, const Json* before, const Json* after);
  // Group key is the group field's value serialised as JSON text ("\"paid\"", "42", "null").
  const std::map<std::string, GroupTotals>& groups() const { return groups_; }
  GroupTotals total() const;

 private:
  struct Contribution {
    std::string group;
    double value = 0;
  };
  // Exact running sum (Shewchuk's non-overlapping partials, as in Python's math.fsum): adding
  // and later subtracting a value leaves no rounding residue, so a group's sum is the correctly
  // rounded sum of its current members whatever the order of changes (replicas agree).
  struct ExactSum {
    std::vector<double> partials;
    void add(double x);
    double value() const;
  };
  void add(const Contribution& c, int sign);

  AggregateSpec spec_;
  std::map<std::string, GroupTotals> groups_;           // what groups() exposes
  std::unordered_map<std::string, ExactSum> sums_;      // group -> exact sum behind groups_
  std::unordered_map<std::string, Contribution> contributions_;
  GroupTotals total_;
  ExactSum total_sum_;
};

}  // namespace syncline
