#include "core/bearer.h"

#include <optional>

#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

TEST(BearerCredentialTest, TheCredentialAfterTheSchemeInAnyCaseStripped) {
  EXPECT_EQ(BearerCredential("Bearer abc"), "abc");
  EXPECT_EQ(BearerCredential("bearer abc"), "abc");
  EXPECT_EQ(BearerCredential("BEARER  abc \t"), "abc");
}

TEST(BearerCredentialTest, AnyOtherFormIsNone) {
  EXPECT_EQ(BearerCredential(""), std::nullopt);
  EXPECT_EQ(BearerCredential("abc"), std::nullopt);  // no scheme
  EXPECT_EQ(BearerCredential("Bearer"), std::nullopt);
  EXPECT_EQ(BearerCredential("Bearer   "), std::nullopt);  // empty credential
  EXPECT_EQ(BearerCredential("Basic abc"), std::nullopt);
  EXPECT_EQ(BearerCredential("Bearerabc"), std::nullopt);
}

}  // namespace
}  // namespace tokenstatus
