// Layer: tests/core. JsonReader (src/core/json_reader) against nlohmann::json::parse: the same
// texts accepted and the same values built, down to the number type (uint64 / int64 / double),
// on a table of edge cases and on seeded random mutations of real frames.
#include "core/json_reader.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "json_strict.hpp"

namespace syncline {
namespace {

void expect_same_as_nlohmann(const std::string& text) {
  const Json want = parse_json_nothrow(text);
  const Json got = parse_json_fast(text);
  ASSERT_EQ(got.is_discarded(), want.is_discarded()) << "accept/reject differs for: " << text;
  if (!want.is_discarded()) {
    EXPECT_TRUE(test::strictly_equal(got, want)) << "value differs for: " << text << "\n got " << got.dump()
                                                  << "\nwant " << want.dump();
  }
}

TEST(JsonReader, Scalars) {
  for (const char* t : {"0", "-0", "1", "-1", "42", "  7  ", "\t\r\n8", "true", "false", "null", "\"\"", "\"a\"",
                        "1.5", "-1.5", "1e3", "1E3", "1e+3", "1e-3", "-0.0", "0.000001", "123456789.123456789e-5",
                        "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
                        "-9223372036854775808", "-9223372036854775809", "99999999999999999999999999", "1e308",
                        "1e-400", "4.9e-324"}) {
    expect_same_as_nlohmann(t);
  }
}

// Decimals take a fast exact path when short (<= 15 digits, |power of ten| <= 22), strtod
// otherwise: both must give strtod's correctly rounded double.
TEST(JsonReader, FloatsMatchStrtod) {
  for (const char* t : {"0.1", "0.2", "0.3", "4.35", "1234.56", "-9876.54", "1e22", "1e23", "1.5e-22", "1.5e-23",
                        "123456789012345.6", "12345678901234.56", "999999999999999.9", "9007199254740993.0",
                        "1.7976931348623157e308", "2.2250738585072014e-308", "5e-324", "-0.0e5", "0e999",
                        "0.0000000000000000000001e22", "100000000000000000000000.0", "1.000000000000000000001",
                        "0.000000000000001", "7.0e-10", "3.14159265358979", "2.718281828459045"}) {
    expect_same_as_nlohmann(t);
  }
  Rng rng(99);
  for (int i = 0; i < 100000; ++i) {
    std::string t = rng.below(2) ? "-" : "";
    t += std::to_string(rng.below(1000000000000ULL) >> rng.below(40));
    if (rng.below(4)) t += "." + std::to_string(rng.below(100000000ULL) >> rng.below(27));
    if (rng.below(3) == 0) t += "e" + std::to_string(static_cast<int>(rng.below(70)) - 35);
    expect_same_as_nlohmann(t);
    if (HasFailure()) return;
  }
}

TEST(JsonReader, RejectsWhatNlohmannRejects) {
  for (const char* t : {"", " ", "01", "-", "-a", "1.", ".5", "1e", "1e+", "+1", "1e400", "-1e400", "tru", "truex",
                        "nul", "NaN", "Infinity", "[", "]", "[1,]", "[,1]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
                        "{,}", "{1:2}", "{'a':1}", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "1 2", "[1] x",
                        "{}{}", "/*c*/1", "[1]//", "\"a\tb\"", "\"\\uD800\"", "\"\\uDC00\"", "\"\\uD800\\u0041\"",
                        "\"\\uD800x\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
                        "\"\xf4\x90\x80\x80\"", "\"\xc3\"", "\"\xe2\x82\"", "\xef\xbb", "\xef\xbb\xbf"}) {
    expect_same_as_nlohmann(t);
  }
  expect_same_as_nlohmann(std::string("\"a\0b\"", 5));
  expect_same_as_nlohmann(std::string("[1,\0]", 5));
}

TEST(JsonReader, StringsAndEscapes) {
  for (const char* t : {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"\\u0000\"", "\"\\u0041\\u00e9\\u20AC\"",
                        "\"\\uD83D\\uDE00\"", "\"\\ud83d\\ude00\"", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                        "\"\x7f\"", "\"\xef\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"", "\"\xed\x9f\xbf\"",
                        "\xef\xbb\xbf\"bom\"", "\xef\xbb\xbf  {\"a\":1}"}) {
    expect_same_as_nlohmann(t);
  }
  expect_same_as_nlohmann("\"" + std::string(1000, 'x') + "\"");
}

TEST(JsonReader, Containers) {
  for (const char* t : {"[]", "{}", "[ ]", "{ }", "[[[]]]", "[1,[2,[3,{}]],{\"a\":[{}]}]", "{\"a\":1,\"b\":{\"c\":[1,2]}}",
                        "{\"a\":1,\"a\":2}", "{\"a\":{\"x\":1},\"a\":[2]}", "{\"\":0}", "{\"b\":1,\"a\":2,\"c\":3}",
                        " [ 1 , 2 ] ", "{\"k\\u00e9y\":true}"}) {
    expect_same_as_nlohmann(t);
  }
}

TEST(JsonReader, DeepNestingNeedsNoRecursion) {
  // Compared at a depth the recursive comparison can take; walked much deeper below.
  expect_same_as_nlohmann(std::string(2000, '[') + std::string(2000, ']'));
  expect_same_as_nlohmann(std::string(2000, '['));
  const std::size_t depth = 100000;
  const std::string deep = std::string(depth, '[') + "1" + std::string(depth, ']');
  JsonReader skip(deep);
  EXPECT_TRUE(skip.skip_value());
  EXPECT_TRUE(skip.at_end());
  JsonReader build(deep);
  Json v;
  EXPECT_TRUE(build.parse_value(v));
  EXPECT_TRUE(build.at_end());
}

TEST(JsonReader, PullWalk) {
  JsonReader r(R"( [ {"a" : 1, "skip": [1, {"x": null}], "b": "t"}, 2 ] )");
  ASSERT_TRUE(r.consume('['));
  ASSERT_TRUE(r.next_element(true));
  ASSERT_TRUE(r.consume('{'));
  std::string key;
  ASSERT_TRUE(r.next_member(true, key));
  EXPECT_EQ(key, "a");
  Json v;
  ASSERT_TRUE(r.parse_value(v));
  EXPECT_EQ(v, 1);
  ASSERT_TRUE(r.next_member(false, key));
  EXPECT_EQ(key, "skip");
  ASSERT_TRUE(r.skip_value());
  ASSERT_TRUE(r.next_member(false, key));
  std::string s;
  ASSERT_TRUE(r.parse_string(s));
  EXPECT_EQ(s, "t");
  EXPECT_FALSE(r.next_member(false, key));
  EXPECT_FALSE(r.failed());
  ASSERT_TRUE(r.next_element(false));
  ASSERT_TRUE(r.skip_value());
  EXPECT_FALSE(r.next_element(false));
  EXPECT_TRUE(r.at_end());
}

// Random edits of valid frames hit the boundaries between tokens that a table misses.
TEST(JsonReader, RandomMutationsAgreeWithNlohmann) {
  const std::vector<std::string> seeds = {
      R"([{"type":"change","seq":12,"collection":"bills","id":"d000001","op":"update","version":12,"fields":{"status":"paid","total":1234.5,"lines":3,"neg":-7,"ok":true,"n":null,"tags":["a","b"],"t":"caf\u00e9 \ud83d\ude00"},"origin":{"client":"c1","mid":4}}])",
      R"({"seq":1,"results":[{"mid":1,"status":"applied","seq":1}],"x":[1.5e10,-0,0.25,[],{}]})",
      "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",18446744073709551615,-9223372036854775808,1e-5]"};
  const std::vector<std::string> tokens = {"{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\uD800", "\\uDC00",
                                           "0", "-", "1", ".", "e", "E+", "9999999999999999999999", "1e400", "true",
                                           "nul", " ", "\n", "\xff", "\xc3", "\xa9", "\xed\xa0\x80", std::string(1, '\0'),
                                           "\x1f", "\xef\xbb\xbf"};
  Rng rng(20261201);
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text = seeds[rng.below(seeds.size())];
    const int edits = 1 + static_cast<int>(rng.below(3));
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng.below(text.size() + 1);
      switch (rng.below(3)) {
        case 0:
          if (pos < text.size()) text.erase(pos, 1 + rng.below(3));
          break;
        case 1:
          text.insert(pos, tokens[rng.below(tokens.size())]);
          break;
        default:
          if (pos < text.size()) text[pos] = tokens[rng.below(tokens.size())][0];
          break;
      }
    }
    expect_same_as_nlohmann(text);
    if (HasFailure()) return;
  }
}

}  // namespace
}  // namespace syncline
