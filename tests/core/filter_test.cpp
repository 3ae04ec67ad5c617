// Tests for src/core/filter: the `where` grammar (parse errors, matching semantics, canonical
// printing). Randomised parts print their seed; rerun one with SYNCLINE_SEED=<seed>.
#include "core/filter.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

namespace syncline {
namespace {

Filter must_parse(std::string_view text) {
  auto r = Filter::parse(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Filter{};
}

bool m(std::string_view where, const Json& fields, std::string_view id = "doc1") {
  return must_parse(where).matches(id, fields);
}

Error parse_error(std::string_view text) {
  auto r = Filter::parse(text);
  EXPECT_FALSE(r.ok()) << "expected an error for " << text;
  return r.ok() ? Error{} : r.error();
}

void expect_error(std::string_view text, const std::string& condition, std::size_t position,
                  const std::string& expected) {
  SCOPED_TRACE(std::string(text));
  Error e = parse_error(text);
  EXPECT_EQ(e.code, "invalid_filter");
  EXPECT_EQ(e.field, "where");
  if (!condition.empty()) {
    EXPECT_NE(e.message.find("\"" + condition + "\""), std::string::npos) << e.message;
  }
  EXPECT_NE(e.message.find("position " + std::to_string(position)), std::string::npos)
      << e.message;
  EXPECT_NE(e.message.find(expected), std::string::npos) << e.message;
}

// ------------------------------------------------------------------------------------- parse

TEST(FilterParse, EmptyStringMatchesEverything) {
  Filter f = must_parse("");
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(f, Filter{});
  EXPECT_TRUE(f.matches("x", Json::object()));
  EXPECT_TRUE(f.matches("x", Json()));
  EXPECT_EQ(f.to_string(), "");
}

TEST(FilterParse, AllOperators) {
  Filter f = must_parse("a=eq.1,b=neq.x,c=gt.2,d=gte.3,e=lt.4,f=lte.5,g=in.(p,q),h=is.null,"
                        "i=is.true,j=is.false");
  const auto& c = f.conditions();
  ASSERT_EQ(c.size(), 10u);
  EXPECT_EQ(c[0], (Condition{{"a"}, FilterOp::Eq, {"1"}}));
  EXPECT_EQ(c[1], (Condition{{"b"}, FilterOp::Neq, {"x"}}));
  EXPECT_EQ(c[2].op, FilterOp::Gt);
  EXPECT_EQ(c[3].op, FilterOp::Gte);
  EXPECT_EQ(c[4].op, FilterOp::Lt);
  EXPECT_EQ(c[5].op, FilterOp::Lte);
  EXPECT_EQ(c[6], (Condition{{"g"}, FilterOp::In, {"p", "q"}}));
  EXPECT_EQ(c[7], (Condition{{"h"}, FilterOp::IsNull, {}}));
  EXPECT_EQ(c[8], (Condition{{"i"}, FilterOp::IsTrue, {}}));
  EXPECT_EQ(c[9], (Condition{{"j"}, FilterOp::IsFalse, {}}));
}

TEST(FilterParse, NestedPathsAndRawValues) {
  Filter f = must_parse("customer.address.zip=eq.10115,_x1=eq.a=b.c(d)");
  ASSERT_EQ(f.conditions().size(), 2u);
  EXPECT_EQ(f.conditions()[0].path, (std::vector<std::string>{"customer", "address", "zip"}));
  EXPECT_EQ(f.conditions()[1].values, (std::vector<std::string>{"a=b.c(d)"}));
}

TEST(FilterParse, EmptyValueIsTheEmptyString) {
  Filter f = must_parse("name=eq.");
  ASSERT_EQ(f.conditions().size(), 1u);
  EXPECT_EQ(f.conditions()[0].values, (std::vector<std::string>{""}));
  EXPECT_TRUE(f.matches("x", {{"name", ""}}));
  EXPECT_FALSE(f.matches("x", {{"name", "a"}}));
}

TEST(FilterParse, InWithQuotedItems) {
  Filter f = must_parse(R"(s=in.(a,b,"c,d","e)f","",x"y,"q\"\\"),t=eq.1)");
  ASSERT_EQ(f.conditions().size(), 2u);
  EXPECT_EQ(f.conditions()[0].values,
            (std::vector<std::string>{"a", "b", "c,d", "e)f", "", "x\"y", "q\"\\"}));
  EXPECT_EQ(f.conditions()[1], (Condition{{"t"}, FilterOp::Eq, {"1"}}));
  EXPECT_TRUE(f.matches("x", {{"s", "c,d"}, {"t", 1}}));
  EXPECT_TRUE(f.matches("x", {{"s", ""}, {"t", 1}}));
  EXPECT_FALSE(f.matches("x", {{"s", "c"}, {"t", 1}}));
}

TEST(FilterParse, QuotedScalarValue) {
  Filter f = must_parse(R"(name=eq."Smith, J.",k=neq."\"q")");
  ASSERT_EQ(f.conditions().size(), 2u);
  EXPECT_EQ(f.conditions()[0].values[0], "Smith, J.");
  EXPECT_EQ(f.conditions()[1].values[0], "\"q");
  // A quote that does not start the value is literal.
  EXPECT_EQ(must_parse(R"(a=eq.x"y)").conditions()[0].values[0], "x\"y");
}

TEST(FilterParseErrors, UnknownOperator) {
  expect_error("a=eq.1,b=foo.2", "b=foo.2", 7, "unknown operator \"foo\"");
  expect_error("b=foo.2", "b=foo.2", 0, "expected one of eq, neq, gt, gte, lt, lte, in, is");
  expect_error("b=EQ.2", "b=EQ.2", 0, "unknown operator");
  expect_error("b=.2", "b=.2", 0, "missing operator");
}

TEST(FilterParseErrors, MissingEquals) {
  expect_error("status", "status", 0, "missing '='");
  expect_error("a=eq.1,status.eq.x", "status.eq.x", 7, "missing '='");
}

TEST(FilterParseErrors, MissingDotAfterOperator) {
  expect_error("a=eq", "a=eq", 0, "missing '.' after operator \"eq\"");
  expect_error("a=in,b=eq.1", "a=in", 0, "missing '.'");
  expect_error("a=is", "a=is", 0, "missing '.'");
}

TEST(FilterParseErrors, EmptyField) {
  expect_error("=eq.1", "=eq.1", 0, "empty field");
  expect_error("a=eq.1,=eq.2", "=eq.2", 7, "empty field");
}

TEST(FilterParseErrors, BadFieldCharacters) {
  for (const char* f : {"a-b=eq.1", "1a=eq.1", "a..b=eq.1", "a.=eq.1", ".a=eq.1", "a b=eq.1",
                        " a=eq.1", "a.1b=eq.1", "é=eq.1"}) {
    std::string text = f;
    expect_error(text, text, 0, "invalid field name");
  }
}

TEST(FilterParseErrors, UnclosedParen) {
  expect_error("s=in.(a,b", "s=in.(a,b", 0, "unclosed '('");
  expect_error("x=eq.1,s=in.(a", "s=in.(a", 7, "expected ')'");
  expect_error(R"(s=in.(a,"b)", "", 0, "unterminated quoted");
  expect_error("s=in.a,b", "s=in.a", 0, "expected '(' after 'in.'");
  expect_error("s=in.(a)b", "s=in.(a)b", 0, "unexpected text after ')'");
  expect_error(R"(s=in.("a"b))", "", 0, "expected ',' or ')'");
  expect_error("s=in.()", "s=in.()", 0, "at least one item");
}

TEST(FilterParseErrors, IsWithOtherValues) {
  for (const char* v : {"nul", "NULL", "True", "1", "", "null2"}) {
    std::string text = std::string("a=is.") + v;
    expect_error(text, text, 0, "expected null, true or false");
  }
}

TEST(FilterParseErrors, TrailingComma) {
  expect_error("a=eq.1,", "", 7, "after ','");
  expect_error("a=eq.1,,b=eq.2", "", 7, "after ','");
  expect_error(",a=eq.1", "", 0, "expected a condition");
  expect_error("s=in.(a,b,)", "s=in.(a,b,)", 0, "empty item");
  expect_error("s=in.(a,,b)", "s=in.(a,,b)", 0, "empty item");
  expect_error("s=in.(,a)", "s=in.(,a)", 0, "empty item");
}

TEST(FilterParseErrors, QuotedScalarErrors) {
  expect_error(R"(a=eq."abc)", "", 0, "unterminated quoted");
  expect_error(R"(a=eq."ab"c,b=eq.1)", "a=eq.\"ab\"c", 0, "expected ',' or the end");
  expect_error(R"(a=eq."ab\)", "", 0, "unterminated quoted");
}

TEST(FilterParseErrors, ErrorNamesTheWholeConditionIncludingQuotedCommas) {
  Error e = parse_error(R"(a=eq.1,s=in.("x,y",z)junk,b=eq.2)");
  EXPECT_NE(e.message.find(R"("s=in.("x,y",z)junk")"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("position 7"), std::string::npos) << e.message;
}

// ----------------------------------------------------------------------------------- matching

TEST(FilterMatch, NumbersCompareNumerically) {
  Json d = {{"n", 10}, {"f", 2.5}, {"neg", -3}};
  EXPECT_TRUE(m("n=eq.10", d));
  EXPECT_TRUE(m("n=eq.10.0", d));
  EXPECT_TRUE(m("n=eq.1e1", d));
  EXPECT_TRUE(m("n=gt.9", d));
  EXPECT_FALSE(m("n=gt.10", d));
  EXPECT_TRUE(m("n=gte.10", d));
  EXPECT_TRUE(m("n=lt.10.5", d));
  EXPECT_FALSE(m("n=lt.9", d));  // "10" < "9" as text, but numbers compare as numbers
  EXPECT_TRUE(m("n=lte.10", d));
  EXPECT_TRUE(m("f=gt.2", d));
  EXPECT_TRUE(m("f=lt.3", d));
  EXPECT_TRUE(m("f=eq.2.50", d));
  EXPECT_TRUE(m("f=eq..25e1", d));
  EXPECT_TRUE(m("neg=lt.-2.5", d));
  EXPECT_TRUE(m("neg=eq.-3", d));
  EXPECT_TRUE(m("n=in.(1,10,100)", d));
  EXPECT_FALSE(m("n=in.(1,100)", d));
  EXPECT_TRUE(m("n=neq.11", d));
  EXPECT_FALSE(m("n=neq.10", d));
}

TEST(FilterMatch, NonNumericValueNeverMatchesANumberField) {
  Json d = {{"n", 10}};
  for (const char* v : {"abc", "", "10abc", " 10", "10 ", "0x0A", "inf", "nan", "+10", "1e",
                        "-", ".", "1.2.3"}) {
    SCOPED_TRACE(v);
    std::string s = v;
    // Quote the value so spaces and the empty string survive the grammar unchanged.
    auto q = [&](const char* op) { return std::string("n=") + op + ".\"" + s + "\""; };
    EXPECT_FALSE(m(q("eq"), d));
    EXPECT_FALSE(m(q("gt"), d));
    EXPECT_FALSE(m(q("gte"), d));
    EXPECT_FALSE(m(q("lt"), d));
    EXPECT_FALSE(m(q("lte"), d));
    EXPECT_TRUE(m(q("neq"), d));  // neq is "not eq"
  }
}

TEST(FilterMatch, LargeIntegersCompareExactly) {
  Json d = {{"big", std::int64_t{9007199254740993}},
            {"max", std::numeric_limits<std::int64_t>::max()},
            {"umax", std::numeric_limits<std::uint64_t>::max()}};
  EXPECT_TRUE(m("big=eq.9007199254740993", d));
  EXPECT_FALSE(m("big=eq.9007199254740992", d));
  EXPECT_TRUE(m("big=gt.9007199254740992", d));
  EXPECT_TRUE(m("big=gt.9007199254740992.0", d));
  EXPECT_TRUE(m("max=eq.9223372036854775807", d));
  EXPECT_TRUE(m("max=lt.9223372036854775808", d));  // parsed as uint64
  EXPECT_TRUE(m("umax=eq.18446744073709551615", d));
  EXPECT_TRUE(m("umax=gt.-1", d));
  EXPECT_TRUE(m("umax=lt.18446744073709551616", d));  // parsed as double 2^64
  EXPECT_TRUE(m("max=gt.-99999999999999999999", d));
  EXPECT_TRUE(m("max=lt.1e300", d));
  EXPECT_TRUE(m("max=lt.1e999", d));  // overflows to +inf
}

TEST(FilterMatch, StringsCompareByBytes) {
  Json d = {{"s", "b"}, {"num", "10"}, {"u", "\xC3\xA9"}};
  EXPECT_TRUE(m("s=eq.b", d));
  EXPECT_FALSE(m("s=eq.B", d));
  EXPECT_TRUE(m("s=gt.a", d));
  EXPECT_TRUE(m("s=gt.B", d));  // 'b' (0x62) > 'B' (0x42)
  EXPECT_TRUE(m("s=lt.ba", d));
  EXPECT_TRUE(m("s=gte.b", d));
  EXPECT_TRUE(m("num=lt.9", d));  // string field: compared as text
  EXPECT_TRUE(m("num=eq.10", d));
  EXPECT_FALSE(m("num=eq.10.0", d));
  EXPECT_TRUE(m("u=gt.z", d));  // bytes are unsigned: 0xC3 > 'z'
  EXPECT_TRUE(m("s=in.(a,b)", d));
  EXPECT_TRUE(m("s=neq.c", d));
}

TEST(FilterMatch, Booleans) {
  Json d = {{"t", true}, {"f", false}};
  EXPECT_TRUE(m("t=eq.true", d));
  EXPECT_FALSE(m("t=eq.false", d));
  EXPECT_TRUE(m("f=eq.false", d));
  EXPECT_FALSE(m("t=eq.1", d));
  EXPECT_FALSE(m("t=eq.TRUE", d));
  EXPECT_TRUE(m("t=neq.1", d));
  EXPECT_TRUE(m("t=is.true", d));
  EXPECT_FALSE(m("t=is.false", d));
  EXPECT_TRUE(m("f=is.false", d));
  EXPECT_FALSE(m("f=is.null", d));
  EXPECT_TRUE(m("t=gt.false", d));
  EXPECT_TRUE(m("f=lt.true", d));
  EXPECT_TRUE(m("t=in.(false,true)", d));
  // is.true / is.false need a real boolean.
  EXPECT_FALSE(m("x=is.true", {{"x", "true"}}));
  EXPECT_FALSE(m("x=is.false", {{"x", 0}}));
}

TEST(FilterMatch, MissingAndNullMatchOnlyIsNullAndNeq) {
  for (const Json& d : {Json{{"other", 1}}, Json{{"x", nullptr}}}) {
    SCOPED_TRACE(d.dump());
    EXPECT_TRUE(m("x=is.null", d));
    EXPECT_TRUE(m("x=neq.1", d));
    EXPECT_TRUE(m("x=neq.null", d));
    for (const char* w : {"x=eq.1", "x=eq.", "x=eq.null", "x=gt.1", "x=gte.1", "x=lt.1",
                          "x=lte.1", "x=in.(1,null)", "x=is.true", "x=is.false"}) {
      EXPECT_FALSE(m(w, d)) << w;
    }
  }
  EXPECT_FALSE(m("x=is.null", {{"x", 0}}));
  EXPECT_FALSE(m("x=is.null", {{"x", ""}}));
}

TEST(FilterMatch, ArraysAndObjectsOnlyMatchNeq) {
  Json d = {{"a", {1, 2}}, {"o", {{"k", 1}}}};
  EXPECT_FALSE(m(R"(a=eq."[1,2]")", d));
  EXPECT_FALSE(m("a=eq.[1]", d));
  EXPECT_FALSE(m("a=gt.0", d));
  EXPECT_FALSE(m("o=in.(1)", d));
  EXPECT_FALSE(m("o=is.null", d));
  EXPECT_TRUE(m("a=neq.1", d));
}

TEST(FilterMatch, IdRefersToTheDocumentId) {
  Json d = {{"id", "field-id"}, {"n", 1}};
  EXPECT_TRUE(m("id=eq.doc-7", d, "doc-7"));
  EXPECT_FALSE(m("id=eq.field-id", d, "doc-7"));
  EXPECT_TRUE(m("id=in.(a,doc-7)", d, "doc-7"));
  EXPECT_TRUE(m("id=gt.doc-6", d, "doc-7"));
  EXPECT_TRUE(m("id=neq.x", d, "doc-7"));
  EXPECT_FALSE(m("id=is.null", d, "doc-7"));
  EXPECT_TRUE(m("id=eq.42", d, "42"));  // the id is a string: compared as text
  // Only the bare `id` is special: a nested `id` is an ordinary field.
  EXPECT_TRUE(m("ref.id=eq.7", {{"ref", {{"id", 7}}}}, "doc-7"));
}

TEST(FilterMatch, NestedPaths) {
  Json d = {{"customer", {{"address", {{"zip", "10115"}}}, {"vip", true}}}, {"flat", 3}};
  EXPECT_TRUE(m("customer.address.zip=eq.10115", d));
  EXPECT_TRUE(m("customer.vip=is.true", d));
  EXPECT_TRUE(m("customer.address.city=is.null", d));
  EXPECT_TRUE(m("flat.inner=is.null", d));  // through a non-object: missing
  EXPECT_FALSE(m("flat.inner=eq.3", d));
  EXPECT_TRUE(m("customer.address=neq.x", d));
}

TEST(FilterMatch, CommaMeansAnd) {
  Json d = {{"status", "open"}, {"total", 120}};
  EXPECT_TRUE(m("status=eq.open,total=gte.100", d));
  EXPECT_FALSE(m("status=eq.open,total=gte.200", d));
  EXPECT_FALSE(m("status=eq.paid,total=gte.100", d));
}

TEST(FilterMatch, NonObjectFieldsDoNotCrash) {
  Filter f = must_parse("a=eq.1,b=is.null");
  EXPECT_FALSE(f.matches("x", Json()));
  EXPECT_FALSE(f.matches("x", Json::array({1, 2})));
  EXPECT_FALSE(f.matches("x", Json(Json::value_t::discarded)));
  EXPECT_TRUE(must_parse("b=is.null").matches("x", Json(Json::value_t::discarded)));
  EXPECT_TRUE(must_parse("id=eq.x").matches("x", Json(5)));
}

TEST(FilterMatch, InvalidUtf8StringsAreJustBytes) {
  Json d = {{"s", std::string("\xff\xfe")}};
  EXPECT_TRUE(m("s=gt.z", d));
  EXPECT_TRUE(m("s=eq.\xff\xfe", d));
}

// A condition whose value came from a token claim compares as that exact string: the server's
// rules (customer_id=eq.{sub}) must not let sub "04242" or "4.242e3" read the number 4242.
TEST(FilterMatch, ExactStringConditionsMatchOnlyTheSameString) {
  auto parsed = Filter::parse("customer_id=eq.4242");
  ASSERT_TRUE(parsed.ok());
  std::vector<Condition> conds = parsed->conditions();
  EXPECT_TRUE(parsed->matches("x", Json{{"customer_id", 4242}}));  // the grammar's own rule
  conds[0].exact_string = true;
  Filter exact(conds);
  EXPECT_FALSE(exact.matches("x", Json{{"customer_id", 4242}}));
  EXPECT_FALSE(exact.matches("x", Json{{"customer_id", 4242.0}}));
  EXPECT_TRUE(exact.matches("x", Json{{"customer_id", "4242"}}));
  EXPECT_FALSE(exact.matches("x", Json{{"customer_id", "04242"}}));
  EXPECT_FALSE(exact.matches("x", Json::object()));
  for (const char* v : {"04242", "4.242e3", "4242.0"}) {
    auto p = Filter::parse(std::string("customer_id=eq.") + v);
    ASSERT_TRUE(p.ok());
    auto c = p->conditions();
    EXPECT_TRUE(p->matches("x", Json{{"customer_id", 4242}})) << v;
    c[0].exact_string = true;
    EXPECT_FALSE(Filter(c).matches("x", Json{{"customer_id", 4242}})) << v;
  }
  // Booleans likewise; neq stays "not eq"; in compares each item as a string.
  auto t = Filter::parse("flag=eq.true,other=neq.1,k=in.(1,2)");
  ASSERT_TRUE(t.ok());
  auto tc = t->conditions();
  for (auto& c : tc) c.exact_string = true;
  EXPECT_FALSE(Filter({tc[0]}).matches("x", Json{{"flag", true}}));
  EXPECT_TRUE(Filter({tc[0]}).matches("x", Json{{"flag", "true"}}));
  EXPECT_TRUE(Filter({tc[1]}).matches("x", Json{{"other", 1}}));
  EXPECT_FALSE(Filter({tc[1]}).matches("x", Json{{"other", "1"}}));
  EXPECT_FALSE(Filter({tc[2]}).matches("x", Json{{"k", 2}}));
  EXPECT_TRUE(Filter({tc[2]}).matches("x", Json{{"k", "2"}}));
}

TEST(LookupField, Paths) {
  Json d = {{"a", {{"b", {{"c", 1}}}}}, {"n", nullptr}};
  ASSERT_NE(lookup_field(d, {"a", "b", "c"}), nullptr);
  EXPECT_EQ(*lookup_field(d, {"a", "b", "c"}), 1);
  EXPECT_EQ(lookup_field(d, {"a", "x"}), nullptr);
  EXPECT_EQ(lookup_field(d, {"a", "b", "c", "d"}), nullptr);
  ASSERT_NE(lookup_field(d, {"n"}), nullptr);  // present null is not missing
  EXPECT_TRUE(lookup_field(d, {"n"})->is_null());
  EXPECT_EQ(lookup_field(Json(3), {"a"}), nullptr);
}

// ----------------------------------------------------------------------------------- printing

TEST(FilterPrint, CanonicalAndRoundTrips) {
  for (const char* text :
       {"a=eq.1", "a.b.c=neq.x", "n=gt.1.5,n=lt.2e3", "s=in.(a,b)", "x=is.null,y=is.true,z=is.false",
        "name=eq.", "v=eq.a=b"}) {
    Filter f = must_parse(text);
    EXPECT_EQ(f.to_string(), text);
    EXPECT_EQ(must_parse(f.to_string()), f);
  }
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {Case{R"(s=in.(a,"b",""))", R"(s=in.(a,b,""))"},
                        Case{R"(s=in.("x,y","p)q","(r",x"y))", R"(s=in.("x,y","p)q","(r",x"y))"},
                        Case{R"(s=in.("\"a"))", R"(s=in.("\"a"))"},
                        Case{R"(s=eq."plain")", "s=eq.plain"},
                        Case{R"(s=eq."a,b")", R"(s=eq."a,b")"},
                        Case{R"(s=eq."\"x")", R"(s=eq."\"x")"},
                        Case{R"(s=eq.x\y)", R"(s=eq.x\y)"}}) {
    Filter f = must_parse(c.in);
    EXPECT_EQ(f.to_string(), c.out) << c.in;
    EXPECT_EQ(must_parse(f.to_string()), f) << c.in;
  }
}

TEST(FilterPrint, AndAlsoConcatenates) {
  Filter a = must_parse("status=eq.open");
  Filter b = must_parse("customer_id=eq.42,total=gt.0");
  Filter ab = a.and_also(b);
  EXPECT_EQ(ab.to_string(), "status=eq.open,customer_id=eq.42,total=gt.0");
  EXPECT_EQ(ab.conditions().size(), 3u);
  EXPECT_EQ(a.and_also(Filter{}), a);
  EXPECT_EQ(Filter{}.and_also(b), b);
  Json d = {{"status", "open"}, {"customer_id", 42}, {"total", 5}};
  EXPECT_TRUE(ab.matches("x", d));
  d["customer_id"] = 43;
  EXPECT_TRUE(a.matches("x", d));
  EXPECT_FALSE(ab.matches("x", d));
}

std::uint64_t base_seed() {
  if (const char* s = std::getenv("SYNCLINE_SEED")) return std::strtoull(s, nullptr, 10);
  return 20240611;
}

// Random text over the grammar's alphabet: parse never crashes, and whatever parses prints to a
// canonical form that parses back to the same filter.
TEST(FilterFuzz, RandomTextParsesOrFailsCleanlyAndRoundTrips) {
  const std::uint64_t seed = base_seed();
  SCOPED_TRACE("seed=" + std::to_string(seed) + " (rerun with SYNCLINE_SEED=" +
               std::to_string(seed) + ")");
  std::mt19937_64 rng(seed);
  const std::vector<std::string> atoms = {"a", "b.c", "id", "=", ".", ",", "(", ")", "\"", "\\",
                                          "eq", "neq", "gt", "in", "is", "null", "true", "1",
                                          "-2.5", "x y", "a=eq.", "s=in.(", "=is.", "\xff"};
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) text += atoms[rng() % atoms.size()];
    auto r = Filter::parse(text);
    if (!r.ok()) {
      ASSERT_EQ(r.error().code, "invalid_filter") << text;
      ASSERT_EQ(r.error().field, "where") << text;
      continue;
    }
    ++parsed;
    auto again = Filter::parse(r->to_string());
    ASSERT_TRUE(again.ok()) << text << " -> " << r->to_string();
    ASSERT_EQ(*again, *r) << text << " -> " << r->to_string();
    ASSERT_EQ(again->to_string(), r->to_string());
    (void)r->matches("a", Json{{"a", 1}, {"b", {{"c", "x"}}}});
  }
  EXPECT_GT(parsed, 100);
}

}  // namespace
}  // namespace syncline
