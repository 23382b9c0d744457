#pragma once

#include "absl/strings/string_view.h"

namespace tokenstatus {

// Whether `address` can be reached only from this machine: the one rule of "is this loopback?"
// for the server (may it run without TLS or without authentication on its --listen address?)
// and for clients (may a bearer credential go over plaintext to --server?).
//
// `address` is a host ("localhost", "127.0.0.1", "::1", "[::1]"), a host and port
// ("localhost:50051", "[::1]:50051") or a gRPC target ("dns:///localhost:50051",
// "ipv4:127.0.0.1:50051", "ipv6:[::1]:50051", "unix:/run/x.sock", "unix-abstract:x"). Loopback
// means: a unix socket, the name "localhost", an IPv4 literal in 127.0.0.0/8, or the IPv6
// literal ::1. Any other name is not loopback, even one that resolves to it today
// ("127.example.com" is not). Pure, thread-safe.
bool IsLoopbackAddress(absl::string_view address);

}  // namespace tokenstatus
