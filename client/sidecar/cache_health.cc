#include "client/sidecar/cache_health.h"

#include "absl/strings/str_cat.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/log.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"

namespace tokenstatus {

CacheHealth::CacheHealth(TokenCache& cache, grpc::HealthCheckServiceInterface* health)
    : cache_(cache), health_(health) {
  listener_ = cache_.OnChange([this](const CacheChange& change) {
    if (change.kind != CacheChange::Kind::kEvent) Publish();
  });
  Publish();
}

CacheHealth::~CacheHealth() { cache_.RemoveListener(listener_); }

void CacheHealth::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (health_ != nullptr) health_->Shutdown();
  health_ = nullptr;
}

void CacheHealth::Publish() {
  absl::MutexLock lock(&mu_);
  if (health_ == nullptr) return;
  const bool serving = cache_.fresh();
  if (published_ == static_cast<int>(serving)) return;
  published_ = serving;
  health_->SetServingStatus("", serving);
  health_->SetServingStatus(apitoken::v1::TokenService::service_full_name(), serving);
  health_->SetServingStatus(envoy::service::auth::v3::Authorization::service_full_name(), serving);
  Log(serving ? LogLevel::kInfo : LogLevel::kWarning,
      absl::StrCat(serving ? "event=cache_serving" : "event=cache_not_serving", " synced=",
                   cache_.synced() ? "true" : "false", " revision=", cache_.revision()));
}

}  // namespace tokenstatus
