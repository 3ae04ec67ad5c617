// The C++ face of the error-code registry (src/core/error_codes.def). That a literal outside the
// registry does not compile is the point of RegisteredCode; these checks cover the rest.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/error.hpp"

namespace syncline {
namespace {

static_assert(to_string(ErrorCode::InvalidRequest) == "invalid_request");
static_assert(http_status(ErrorCode::RateLimited) == 429);
static_assert(http_status("method_not_allowed") == 405);
static_assert(http_status("conflict") == 0);  // a per-write outcome, never an HTTP answer
static_assert(http_status("not a code") == 0);
static_assert(parse_error_code("slow_consumer") == ErrorCode::SlowConsumer);
static_assert(!parse_error_code("Conflict").has_value());
static_assert(RegisteredCode("unavailable").code() == ErrorCode::Unavailable);
static_assert(RegisteredCode(codes::kStorageWiped).wire() == "storage_wiped");

TEST(ErrorCodes, EveryCodeRoundTripsAndIsListedOnce) {
  std::set<std::string> seen;
  for (ErrorCode c : all_error_codes()) {
    const std::string wire(to_string(c));
    EXPECT_TRUE(seen.insert(wire).second) << wire;
    EXPECT_EQ(parse_error_code(wire), c) << wire;
    const int status = http_status(c);
    EXPECT_TRUE(status == 0 || (status >= 400 && status <= 599)) << wire << " " << status;
  }
  EXPECT_EQ(seen.size(), kErrorCodeCount);
}

TEST(ErrorCodes, MakeErrorCarriesTheWireString) {
  const Error e = make_error(codes::kPayloadTooLarge, "too big", "body");
  EXPECT_EQ(e.code, "payload_too_large");
  EXPECT_EQ(http_status(e.code), 413);
  EXPECT_EQ(make_error(ErrorCode::Forbidden, "no").code, codes::kForbidden);
}

}  // namespace
}  // namespace syncline
