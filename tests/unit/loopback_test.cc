#include "core/loopback.h"

#include "gtest/gtest.h"

namespace tokenstatus {
namespace {

TEST(LoopbackTest, LoopbackHostsAddressesAndTargets) {
  for (const char* address :
       {"localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost:50051",
        "127.0.0.1:50051", "[::1]:50051", "dns:///localhost:50051", "dns:///127.0.0.1:1",
        "ipv4:127.0.0.1:50051", "ipv6:[::1]:50051", "unix:/run/tokenstatus.sock",
        "unix-abstract:tokenstatus"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
}

TEST(LoopbackTest, EverythingElseIsNot) {
  for (const char* address :
       {"", "0.0.0.0", "0.0.0.0:50051", "[::]:50051", "::", "10.0.0.1:50051", "128.0.0.1",
        "127.example.com:50051", "127.0.0.1.nip.io", "localhost.example.com:1", "tokenstatus:50051",
        "dns:///tokenstatus.default.svc:50051", "[::2]:1", "ipv4:10.1.1.1:50051"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

}  // namespace
}  // namespace tokenstatus
