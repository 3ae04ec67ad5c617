// Layer: tests/fuzz. Target "filter": the `where` parser, printer and matcher (src/core/filter).
//
// Input: "<filter text>" or "<filter text>\0<JSON document>". The filter text is parsed; when it
// parses, the filter is matched against a few fixed documents and the optional fuzz document.
// Invariants:
//   - parse never crashes; errors are "invalid_filter" with field "where";
//   - to_string() is canonical: parse(to_string(f)) == f and printing again gives the same text;
//   - and_also(f) of a filter with itself matches exactly the same documents;
//   - each condition is consistent with the contract of filter.hpp: neq == !eq, in(v) == eq(v),
//     gte == gt || eq, lte == lt || eq, never both gt and lt, and a field matching eq/gt/lt
//     matches exactly one of them.
#include "core/filter.hpp"
#include "fuzz_common.hpp"

using namespace syncline;

namespace {

struct Doc {
  const char* id;
  Json fields;
};

const std::vector<Doc>& fixed_docs() {
  static const std::vector<Doc> docs = {
      {"b1", Json::parse(R"j({"status":"open","total":120,"paid":false,"tags":["a"],"owner":{"id":"u1","n":3}})j")},
      {"b2", Json::parse(R"j({"status":"on hold","total":99.5,"paid":true,"note":null})j")},
      {"x", Json::parse(R"j({"total":-9223372036854775808,"big":18446744073709551615,"f":1e308,"s":""})j")},
      {"id.with.dots", Json::parse(R"j({"a":{"b":{"c":"\"quoted,\""}},"status":"(x)"})j")},
      {"", Json::object()},
  };
  return docs;
}

std::string quote(const std::string& v) {
  std::string q = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') q.push_back('\\');
    q.push_back(ch);
  }
  return q + "\"";
}

// The condition printed on its own, every value quoted (not the canonical form, on purpose:
// it exercises the quoted paths of the parser).
std::string print_condition(const Condition& d) {
  std::string text;
  for (std::size_t i = 0; i < d.path.size(); ++i) text += (i ? "." : "") + d.path[i];
  text += "=";
  auto first = [&] { return quote(d.values.empty() ? std::string() : d.values[0]); };
  switch (d.op) {
    case FilterOp::Eq: return text + "eq." + first();
    case FilterOp::Neq: return text + "neq." + first();
    case FilterOp::Gt: return text + "gt." + first();
    case FilterOp::Gte: return text + "gte." + first();
    case FilterOp::Lt: return text + "lt." + first();
    case FilterOp::Lte: return text + "lte." + first();
    case FilterOp::IsNull: return text + "is.null";
    case FilterOp::IsTrue: return text + "is.true";
    case FilterOp::IsFalse: return text + "is.false";
    case FilterOp::In: {
      text += "in.(";
      for (std::size_t i = 0; i < d.values.size(); ++i) text += (i ? "," : "") + quote(d.values[i]);
      return text + ")";
    }
  }
  return text;
}

// A one-condition filter, made by printing the condition and parsing it back.
Filter single(const Condition& d) {
  const std::string text = print_condition(d);
  auto f = Filter::parse(text);
  FUZZ_CHECK(f.ok(), "a printed condition does not parse: " + text);
  FUZZ_CHECK(f->conditions().size() == 1 && f->conditions()[0] == d,
             "a printed condition parses to something else: " + text);
  return *f;
}

std::optional<Filter> with_op(const Condition& c, FilterOp op, std::vector<std::string> values) {
  Condition d = c;
  d.op = op;
  d.values = std::move(values);
  return single(d);
}

void check_condition_laws(const Condition& c, const char* id, const Json& fields) {
  if (c.values.empty()) return;
  for (const std::string& v : c.values) {
    auto eq = with_op(c, FilterOp::Eq, {v});
    auto neq = with_op(c, FilterOp::Neq, {v});
    auto in = with_op(c, FilterOp::In, {v});
    auto gt = with_op(c, FilterOp::Gt, {v});
    auto gte = with_op(c, FilterOp::Gte, {v});
    auto lt = with_op(c, FilterOp::Lt, {v});
    auto lte = with_op(c, FilterOp::Lte, {v});
    const bool e = eq->matches(id, fields), n = neq->matches(id, fields), i = in->matches(id, fields);
    const bool g = gt->matches(id, fields), ge = gte->matches(id, fields);
    const bool l = lt->matches(id, fields), le = lte->matches(id, fields);
    const std::string ctx = "value \"" + v + "\" on doc " + id + " " + fuzz::dump(fields);
    FUZZ_CHECK(n == !e, "neq is not the negation of eq: " + ctx);
    FUZZ_CHECK(i == e, "in.(v) differs from eq.v: " + ctx);
    FUZZ_CHECK(ge == (g || e), "gte != gt || eq: " + ctx);
    FUZZ_CHECK(le == (l || e), "lte != lt || eq: " + ctx);
    FUZZ_CHECK(int(e) + int(g) + int(l) <= 1, "more than one of eq/gt/lt: " + ctx);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::ByteReader in(data, size);
  std::string_view text = in.until('\0');
  std::optional<Json> extra;
  if (!in.empty()) {
    Json j = parse_json_nothrow(in.rest());
    if (!j.is_discarded()) extra = std::move(j);
  }

  auto f = Filter::parse(text);
  if (!f) {
    FUZZ_CHECK(f.error().code == codes::kInvalidFilter && f.error().field == "where",
               "unexpected error: " + f.error().code + " / " + f.error().field);
    FUZZ_CHECK(!f.error().message.empty(), "error without a message");
    return 0;
  }
  FUZZ_CHECK(f->empty() == text.empty(), "only the empty text is the empty filter");

  const std::string printed = f->to_string();
  auto again = Filter::parse(printed);
  FUZZ_CHECK(again.ok(), "to_string() output does not parse: \"" + printed + "\" from \"" +
                             std::string(text) + "\": " + (again.ok() ? "" : again.error().message));
  FUZZ_CHECK(*again == *f, "parse(to_string()) differs: \"" + printed + "\" from \"" + std::string(text) + "\"");
  FUZZ_CHECK(again->to_string() == printed, "to_string() is not canonical: \"" + printed + "\"");

  const Filter twice = f->and_also(*f);
  auto run = [&](const char* id, const Json& fields) {
    const bool m = f->matches(id, fields);
    FUZZ_CHECK(again->matches(id, fields) == m, "reparsed filter matches differently: " + printed);
    FUZZ_CHECK(twice.matches(id, fields) == m, "f AND f differs from f: " + printed);
    // f is the AND of its conditions; each condition obeys the operator laws.
    bool all = true;
    for (const auto& c : f->conditions()) {
      all = all && single(c).matches(id, fields);
      check_condition_laws(c, id, fields);
    }
    FUZZ_CHECK(all == m, "f differs from the AND of its conditions: " + printed);
  };
  for (const auto& d : fixed_docs()) run(d.id, d.fields);
  if (extra) {
    run("fuzz", *extra);
    run("b1", *extra);
  }
  return 0;
}
