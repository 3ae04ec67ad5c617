// Layer: tests/core. Json equality that also compares number types: nlohmann's operator==
// treats 1u, 1 and 1.0 as equal, but a decoder that built the wrong type would still change
// what the store keeps and how it compares and dumps.
#pragma once
#include <cmath>

#include "core/json.hpp"

namespace syncline::test {

inline bool strictly_equal(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto ib = b.begin();
      for (auto ia = a.begin(); ia != a.end(); ++ia, ++ib) {
        if (ia.key() != ib.key() || !strictly_equal(*ia, *ib)) return false;
      }
      return true;
    }
    case Json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!strictly_equal(a[i], b[i])) return false;
      }
      return true;
    }
    case Json::value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      return x == y && std::signbit(x) == std::signbit(y);
    }
    default:
      return a == b;
  }
}

}  // namespace syncline::test
