#include "server/service/health_publisher.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "apitoken/v1/token_service.grpc.pb.h"
#include "core/log.h"

namespace tokenstatus {

HealthPublisher::HealthPublisher(absl::Duration outage_grace)
    : outage_grace_(outage_grace), thread_([this] { Run(); }) {}

HealthPublisher::~HealthPublisher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void HealthPublisher::SetRedisConnected(bool connected) {
  absl::MutexLock lock(&mu_);
  if (connected == redis_connected_) return;
  redis_connected_ = connected;
  ++changes_;
  if (connected) {
    grace_over_ = false;
    down_since_ = absl::InfiniteFuture();
  } else {
    down_since_ = absl::Now();
  }
  PublishLocked();
}

void HealthPublisher::SetMirrorLoaded() {
  absl::MutexLock lock(&mu_);
  mirror_loaded_ = true;
  PublishLocked();
}

void HealthPublisher::Attach(grpc::HealthCheckServiceInterface* health) {
  absl::MutexLock lock(&mu_);
  healths_.push_back(health);
  PublishLocked();
}

void HealthPublisher::Detach() {
  absl::MutexLock lock(&mu_);
  for (grpc::HealthCheckServiceInterface* health : healths_) health->Shutdown();
  healths_.clear();
}

void HealthPublisher::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const int64_t seen = changes_;
    auto changed = [this, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || changes_ != seen; };
    const absl::Time grace_ends =
        redis_connected_ || grace_over_ ? absl::InfiniteFuture() : down_since_ + outage_grace_;
    if (!mu_.AwaitWithDeadline(absl::Condition(&changed), grace_ends)) {
      grace_over_ = true;
      PublishLocked();
    }
  }
}

void HealthPublisher::PublishLocked() {
  // Before the first connection, the mirror has not loaded: NOT_SERVING either way.
  const bool serving = mirror_loaded_ && (redis_connected_ || !grace_over_);
  if (serving != published_) {
    published_ = serving;
    Log(serving ? LogLevel::kInfo : LogLevel::kWarning,
        absl::StrCat("event=health status=", serving ? "SERVING" : "NOT_SERVING",
                     " redis=", redis_connected_ ? "up" : "down",
                     redis_connected_ || !mirror_loaded_
                         ? ""
                         : absl::StrCat(" outage_grace=", absl::FormatDuration(outage_grace_))));
  }
  for (grpc::HealthCheckServiceInterface* health : healths_) {
    health->SetServingStatus("", serving);
    health->SetServingStatus(apitoken::v1::TokenService::service_full_name(), serving);
  }
}

}  // namespace tokenstatus
