#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tokenstatus {

// Token ids, token secrets and their hashes. Randomness comes from OpenSSL's CSPRNG
// (RAND_bytes); a CSPRNG failure is INTERNAL / INTERNAL. All functions are thread-safe.
//
// A secret has the form "idt:<token id>:<opaque>": the id inside lets a checker find the record
// without a scan; only SHA-256(secret) is ever stored.

// Returns a fresh, uniformly random "TKN-NNNN-NNNN".
absl::StatusOr<std::string> GenerateTokenId();

// Returns a fresh secret "idt:<token_id>:<43 characters of base64url of 32 random bytes>".
// `token_id` must be a valid token id.
absl::StatusOr<std::string> GenerateSecret(absl::string_view token_id);

// Returns a fresh random dataset epoch: 32 lowercase hex characters (16 random bytes).
absl::StatusOr<std::string> GenerateEpoch();

// Returns SHA-256(`data`): 32 raw bytes.
std::string Sha256(absl::string_view data);

// Returns the token id of `secret` if it has the form
// "idt:<valid token id>:<opaque of 16..256 characters of [A-Za-z0-9_-]>", else nullopt.
std::optional<std::string> ParseSecret(absl::string_view secret);

// Compares `a` and `b` in time that depends only on their lengths (CRYPTO_memcmp); strings of
// different lengths are unequal.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace tokenstatus
