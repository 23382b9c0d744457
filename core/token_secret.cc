#include "core/token_secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdint>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/status_util.h"
#include "core/validation.h"

namespace tokenstatus {
namespace {

constexpr char kSecretPrefix[] = "idt:";
constexpr size_t kSecretRandomBytes = 32;
constexpr size_t kMinOpaqueLength = 16;
constexpr size_t kMaxOpaqueLength = 256;

absl::StatusOr<std::string> RandomBytes(size_t count) {
  std::string bytes(count, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(count)) != 1) {
    return MakeError(absl::StatusCode::kInternal, reason::kInternal,
                     "the random number generator failed");
  }
  return bytes;
}

bool IsOpaqueChar(char c) { return absl::ascii_isalnum(c) || c == '-' || c == '_'; }

}  // namespace

absl::StatusOr<std::string> GenerateTokenId() {
  constexpr int kDigits = 8;
  std::string digits;
  while (digits.size() < kDigits) {
    absl::StatusOr<std::string> bytes = RandomBytes(2 * kDigits);
    if (!bytes.ok()) return bytes.status();
    for (char byte : *bytes) {
      const auto value = static_cast<uint8_t>(byte);
      // 250 = 25 * 10: rejecting 250..255 keeps every digit equally likely.
      if (value < 250 && digits.size() < kDigits) digits.push_back('0' + value % 10);
    }
  }
  return absl::StrCat("TKN-", digits.substr(0, 4), "-", digits.substr(4, 4));
}

absl::StatusOr<std::string> GenerateSecret(absl::string_view token_id) {
  absl::StatusOr<std::string> bytes = RandomBytes(kSecretRandomBytes);
  if (!bytes.ok()) return bytes.status();
  return absl::StrCat(kSecretPrefix, token_id, ":", absl::WebSafeBase64Escape(*bytes));
}

absl::StatusOr<std::string> GenerateEpoch() {
  absl::StatusOr<std::string> bytes = RandomBytes(16);
  if (!bytes.ok()) return bytes.status();
  return absl::BytesToHexString(*bytes);
}

std::string Sha256(absl::string_view data) {
  // EVP_sha256() makes OpenSSL 3 look the algorithm up on every digest (about half of a short
  // input's cost): fetch it once, and keep one digest context per thread.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct ContextDeleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
  };
  thread_local const std::unique_ptr<EVP_MD_CTX, ContextDeleter> context(EVP_MD_CTX_new());
  std::string digest(32, '\0');
  unsigned int length = 0;
  if (kSha256 == nullptr || context == nullptr ||
      EVP_DigestInit_ex(context.get(), kSha256, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), reinterpret_cast<unsigned char*>(digest.data()), &length) !=
          1) {
    // Only an allocation failure gets here: fall back to the one-shot form.
    EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()), &length,
               EVP_sha256(), nullptr);
  }
  return digest;
}

std::optional<std::string> ParseSecret(absl::string_view secret) {
  if (!absl::ConsumePrefix(&secret, kSecretPrefix)) return std::nullopt;
  const size_t colon = secret.find(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  const absl::string_view id = secret.substr(0, colon);
  const absl::string_view opaque = secret.substr(colon + 1);
  if (!IsValidTokenId(id) || opaque.size() < kMinOpaqueLength || opaque.size() > kMaxOpaqueLength) {
    return std::nullopt;
  }
  for (char c : opaque) {
    if (!IsOpaqueChar(c)) return std::nullopt;
  }
  return std::string(id);
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tokenstatus
