// Layer: src/core (pure C++20). Must not depend on I/O, Emscripten or the server.
// Incremental live queries and grouped aggregates (contract in live_query.hpp). Nothing here
// throws on bad input: JSON is read through type checks, find() and dump() with the
// `replace` error handler (the default one throws on invalid UTF-8).
#include "core/live_query.hpp"

#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>

namespace syncline {
namespace {

bool present(const Json* j) { return j != nullptr && !j->is_discarded(); }


bool is_structured(const Json& j) { return j.is_array() || j.is_object(); }

int rank(const Json* j) {
  if (!present(j)) return 0;
  if (j->is_null()) return 1;
  if (j->is_boolean()) return j->get<bool>() ? 3 : 2;
  if (j->is_number()) return 4;
  if (j->is_string()) return 5;
  return 6;  // array, object (binary values cannot come from JSON text; grouped here too)
}

int sign_of(double x) { return x < 0 ? -1 : (x > 0 ? 1 : 0); }

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// An integer (exactly one of is_number_integer / is_number_unsigned) against a double, exactly.
// NaN sorts below every number.
int compare_integer_double(const Json& a, double d) {
  if (std::isnan(d)) return 1;
  constexpr double kTwo63 = 9223372036854775808.0;
  constexpr double kTwo64 = 18446744073709551616.0;
  if (d >= kTwo64) return -1;
  if (d < -kTwo63) return 1;
  double t = std::trunc(d);
  double frac = d - t;
  if (a.is_number_unsigned()) {
    if (d < 0) return 1;
    int c = three_way(a.get<std::uint64_t>(), static_cast<std::uint64_t>(t));
    if (c != 0) return c;
  } else {
    if (t >= kTwo63) return -1;
    int c = three_way(a.get<std::int64_t>(), static_cast<std::int64_t>(t));
    if (c != 0) return c;
  }
  return -sign_of(frac);
}

int compare_numbers(const Json& a, const Json& b) {
  bool ai = a.is_number_integer(), bi = b.is_number_integer();  // true for unsigned too
  if (ai && bi) {
    bool au = a.is_number_unsigned(), bu = b.is_number_unsigned();
    if (au && bu) return three_way(a.get<std::uint64_t>(), b.get<std::uint64_t>());
    if (!au && !bu) return three_way(a.get<std::int64_t>(), b.get<std::int64_t>());
    if (au) return -compare_numbers(b, a);
    auto x = a.get<std::int64_t>();  // a signed, b unsigned
    if (x < 0) return -1;
    return three_way(static_cast<std::uint64_t>(x), b.get<std::uint64_t>());
  }
  if (ai) return compare_integer_double(a, b.get<double>());
  if (bi) return -compare_integer_double(b, a.get<double>());
  double x = a.get<double>(), y = b.get<double>();
  bool xn = std::isnan(x), yn = std::isnan(y);
  if (xn || yn) return xn == yn ? 0 : (xn ? -1 : 1);
  return three_way(x, y);
}

int compare_bytes(const std::string& a, const std::string& b) {
  int c = a.compare(b);  // char_traits<char>::compare orders bytes as unsigned char
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

bool orders_by_id(const std::optional<OrderBy>& order_by) {
  return !order_by || order_by->path.empty() ||
         (order_by->path.size() == 1 && order_by->path[0] == "id");
}

bool is_path(const std::vector<std::string>& path, const char* name) {
  return path.size() == 1 && path[0] == name;
}

bool valid_segment(std::string_view seg) {
  if (seg.empty()) return false;
  char c0 = seg[0];
  if (!((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z') || c0 == '_')) return false;
  for (char c : seg) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Result<OrderBy> parse_order_by(std::string_view text) {
  auto fail = [&](const char* why) {
    return make_error(codes::kInvalidQuery,
                      "invalid orderBy \"" + std::string(text) + "\": " + why +
                          "; expected field, field.asc, field.desc or -field",
                      "orderBy");
  };
  OrderBy ob;
  std::string_view f = text;
  bool minus = false;
  if (!f.empty() && f[0] == '-') {
    minus = true;
    ob.descending = true;
    f.remove_prefix(1);
  }
  if (f.size() > 4 && f.ends_with(".asc")) {
    if (minus) return fail("'-' and '.asc' contradict each other");
    f.remove_suffix(4);
  } else if (f.size() > 5 && f.ends_with(".desc")) {
    if (minus) return fail("'-' and '.desc' both given");
    ob.descending = true;
    f.remove_suffix(5);
  }
  if (f.empty()) return fail("empty field");
  std::size_t start = 0;
  while (true) {
    std::size_t dot = f.find('.', start);
    std::string_view seg = f.substr(start, dot == f.npos ? f.npos : dot - start);
    if (!valid_segment(seg)) {
      return fail("invalid field name (letters, digits and '_', not starting with a digit, "
                  "joined by '.')");
    }
    ob.path.emplace_back(seg);
    if (dot == f.npos) break;
    start = dot + 1;
  }
  return ob;
}

int compare_values(const Json* a, const Json* b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 4: return compare_numbers(*a, *b);
    case 5: return compare_bytes(a->get_ref<const std::string&>(), b->get_ref<const std::string&>());
    case 6: return compare_bytes(dump_nothrow(*a), dump_nothrow(*b));
    default: return 0;  // missing, null, false, true: one value per rank
  }
}

// ---------------------------------------------------------------------------------------------
// LiveQuery

LiveQuery::LiveQuery(QuerySpec spec)
    : spec_(std::move(spec)),
      limit_(spec_.limit.value_or(std::numeric_limits<std::size_t>::max())),
      less_{orders_by_id(spec_.order_by), spec_.order_by && spec_.order_by->descending},
      window_(less_),
      rest_(less_) {}

bool LiveQuery::EntryLess::operator()(const Entry& a, const Entry& b) const {
  if (by_id) {
    int c = compare_bytes(a.id, b.id);
    return descending ? c > 0 : c < 0;
  }
  int c = (is_structured(a.key) && is_structured(b.key)) ? compare_bytes(a.text, b.text)
                                                         : compare_values(&a.key, &b.key);
  if (c != 0) return descending ? c > 0 : c < 0;
  return compare_bytes(a.id, b.id) < 0;
}

LiveQuery::Entry LiveQuery::make_entry(const std::string& id, const Json& fields) const {
  Entry e{Json(Json::value_t::discarded), {}, id};
  if (less_.by_id) return e;
  if (const Json* v = lookup_field(fields, spec_.order_by->path)) {
    e.key = *v;
    if (is_structured(e.key)) e.text = dump_nothrow(e.key);
  }
  return e;
}

bool LiveQuery::insert_entry(Entry e) {
  if (limit_ == 0) {
    rest_.insert(std::move(e));
    return false;
  }
  if (window_.size() < limit_) {  // invariant: rest_ is empty while the window is not full
    window_.insert(std::move(e));
    return true;
  }
  auto last = std::prev(window_.end());
  if (less_(e, *last)) {
    rest_.insert(rest_.begin(), window_.extract(last));  // it precedes everything in rest_
    window_.insert(std::move(e));
    return true;
  }
  rest_.insert(std::move(e));
  return false;
}

// O(1): every window entry sorts at or before the window's last one, every rest entry after.
bool LiveQuery::in_window(const Entry& e) const {
  return !window_.empty() && !less_(*window_.rbegin(), e);
}

bool LiveQuery::in_result(const std::string& id) const {
  auto it = entries_.find(id);
  return it != entries_.end() && in_window(it->second);
}

bool LiveQuery::erase_entry(const Entry& e) {
  if (!in_window(e)) {
    rest_.erase(e);
    return false;
  }
  window_.erase(e);
  if (!rest_.empty()) window_.insert(window_.end(), rest_.extract(rest_.begin()));
  return true;
}

bool LiveQuery::on_change(const std::string& id, const Json* before, const Json* after) {
  if (!present(after)) after = nullptr;
  if (!present(before)) before = nullptr;
  bool matches_now = after != nullptr && spec_.where.matches(id, *after);
  auto it = entries_.find(id);

  if (it == entries_.end()) {
    if (!matches_now) return false;
    Entry e = make_entry(id, *after);
    entries_.emplace(id, e);
    return insert_entry(std::move(e));
  }
  if (!matches_now) {
    bool was_in_window = erase_entry(it->second);
    entries_.erase(it);
    return was_in_window;
  }

  Entry e = make_entry(id, *after);
  if (!less_(e, it->second) && !less_(it->second, e)) {
    // Same place in the order: only the member's fields can have changed.
    return in_window(it->second) && (before == nullptr || *before != *after);
  }
  bool was_in_window = erase_entry(it->second);
  it->second = e;
  bool now_in_window = insert_entry(std::move(e));
  // Outside before and after: the window did not move. Otherwise membership, order or the
  // member's sort field changed.
  return was_in_window || now_in_window;
}

std::vector<std::string> LiveQuery::result_ids() const {
  std::vector<std::string> ids;
  ids.reserve(window_.size());
  for (const auto& e : window_) ids.push_back(e.id);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// GroupedAggregate

void GroupedAggregate::ExactSum::add(double x) {
  std::size_t kept = 0;
  for (std::size_t k = 0; k < partials.size(); ++k) {
    double y = partials[k];
    if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
    double hi = x + y;
    double lo = y - (hi - x);
    if (lo != 0.0) partials[kept++] = lo;
    x = hi;
  }
  partials.resize(kept);
  partials.push_back(x);
}

double GroupedAggregate::ExactSum::value() const {
  if (partials.empty()) return 0.0;
  std::size_t n = partials.size();
  double hi = partials[--n];
  double lo = 0.0;
  while (n > 0) {
    double x = hi;
    double y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0.0) break;
  }
  // Round half-even correctly when the rest of the partials push past the halfway point.
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    double y = lo * 2;
    double x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi;
}

GroupedAggregate::GroupedAggregate(AggregateSpec spec) : spec_(std::move(spec)) {}

void GroupedAggregate::add(const Contribution& c, int sign) {
  double v = sign * c.value;
  GroupTotals& g = groups_[c.group];
  ExactSum& s = sums_[c.group];
  g.count += sign;
  s.add(v);
  g.sum = s.value();
  if (g.count == 0) {
    groups_.erase(c.group);
    sums_.erase(c.group);
  }
  total_.count += sign;
  total_sum_.add(v);
  total_.sum = total_sum_.value();
}

bool GroupedAggregate::on_change(const std::string& id, const Json* /*before*/,
                                 const Json* after) {
  if (!present(after)) after = nullptr;
  std::optional<Contribution> next;
  if (after != nullptr && spec_.where.matches(id, *after)) {
    Contribution c;
    if (spec_.group_by.empty()) {
      c.group = "";
    } else if (is_path(spec_.group_by, "id")) {
      c.group = dump_nothrow(Json(id));
    } else {
      const Json* g = lookup_field(*after, spec_.group_by);
      c.group = g != nullptr ? dump_nothrow(*g) : "null";
    }
    if (spec_.sum_of) {
      const Json* v = lookup_field(*after, *spec_.sum_of);
      if (v != nullptr && v->is_number()) {
        double d = v->get<double>();
        if (std::isfinite(d)) c.value = d;
      }
    }
    next = std::move(c);
  }

  auto it = contributions_.find(id);
  if (it == contributions_.end() && !next) return false;
  if (it != contributions_.end() && next && it->second.group == next->group &&
      it->second.value == next->value) {
    return false;
  }

  auto totals_of = [this](const std::string& group) -> std::optional<GroupTotals> {
    auto g = groups_.find(group);
    if (g == groups_.end()) return std::nullopt;
    return g->second;
  };
  std::string old_group = it != contributions_.end() ? it->second.group : next->group;
  std::string new_group = next ? next->group : old_group;
  auto old_a = totals_of(old_group), old_b = totals_of(new_group);

  if (it != contributions_.end()) {
    add(it->second, -1);
    if (next) {
      it->second = *next;
    } else {
      contributions_.erase(it);
    }
  } else {
    contributions_.emplace(id, *next);
  }
  if (next) add(*next, +1);

  return totals_of(old_group) != old_a || totals_of(new_group) != old_b;
}

GroupTotals GroupedAggregate::total() const { return total_; }

}  // namespace syncline
