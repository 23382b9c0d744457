#include "tests/bench/fake_etcd.h"

#include <deque>
#include <utility>

#include "grpcpp/support/status.h"

namespace tokenstatus::bench {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// One Watch stream of FakeEtcd: reads requests until the first create request, registers it,
// then writes whatever Send() queues, one write at a time. Deletes itself when done.
class FakeEtcdWatchStream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse> {
 public:
  explicit FakeEtcdWatchStream(FakeEtcd& etcd) : etcd_(etcd) { StartRead(&request_); }

  void Send(WatchResponse message) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(message));
    WriteNextLocked();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the client half-closed, or the call is over
    if (request_.has_create_request()) {
      etcd_.Register(this, request_.create_request().key(), request_.create_request().range_end());
      return;
    }
    StartRead(&request_);
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return;
    queue_.pop_front();
    WriteNextLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    if (!finished_) Finish(grpc::Status::CANCELLED);
    finished_ = true;
  }
  void OnDone() override {
    etcd_.Forget(this);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_ || queue_.empty()) return;
    writing_ = true;
    StartWrite(&queue_.front());
  }

  FakeEtcd& etcd_;
  WatchRequest request_;  // touched by the read callbacks only
  absl::Mutex mu_;
  std::deque<WatchResponse> queue_ ABSL_GUARDED_BY(mu_);  // front: the write in flight
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

namespace {

grpc::ServerUnaryReactor* FinishOk(grpc::CallbackServerContext* context) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

bool InRange(const std::string& key, const std::string& begin, const std::string& end) {
  return end.empty() ? key == begin : key >= begin && key < end;
}

}  // namespace

FakeEtcd::FakeEtcd() : kv_(*this), watch_(*this) {}

void FakeEtcd::BatchPairs() {
  absl::MutexLock lock(&mu_);
  batch_pairs_ = true;
}

int64_t FakeEtcd::puts() const {
  absl::MutexLock lock(&mu_);
  return puts_;
}

size_t FakeEtcd::keys() const {
  absl::MutexLock lock(&mu_);
  return data_.size();
}

void FakeEtcd::Register(FakeEtcdWatchStream* stream, const std::string& key,
                        const std::string& range_end) {
  absl::MutexLock lock(&mu_);
  watchers_.push_back({stream, key, range_end});
  WatchResponse created;
  created.mutable_header()->set_revision(revision_);
  created.set_created(true);
  stream->Send(std::move(created));  // under mu_: before any event of a later Put
}

void FakeEtcd::Forget(FakeEtcdWatchStream* stream) {
  absl::MutexLock lock(&mu_);
  std::erase_if(watchers_, [stream](const Watcher& watcher) { return watcher.stream == stream; });
}

int64_t FakeEtcd::Put(const std::string& key, const std::string& value) {
  absl::MutexLock lock(&mu_);
  ++puts_;
  mvccpb::KeyValue& kv = data_[key];
  kv.set_key(key);
  kv.set_value(value);
  kv.set_mod_revision(++revision_);
  if (kv.version() == 0) kv.set_create_revision(revision_);
  kv.set_version(kv.version() + 1);
  mvccpb::Event event;
  event.set_type(mvccpb::Event::PUT);
  *event.mutable_kv() = kv;
  held_.push_back(std::move(event));
  if (batch_pairs_ && held_.size() < 2) return revision_;
  for (const Watcher& watcher : watchers_) {
    WatchResponse message;
    message.mutable_header()->set_revision(revision_);
    for (const mvccpb::Event& held : held_) {
      if (InRange(held.kv().key(), watcher.key, watcher.range_end)) *message.add_events() = held;
    }
    if (message.events_size() > 0) watcher.stream->Send(std::move(message));
  }
  held_.clear();
  return revision_;
}

grpc::ServerUnaryReactor* FakeEtcd::KvService::Range(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::RangeRequest* request,
                                                     etcdserverpb::RangeResponse* response) {
  absl::MutexLock lock(&etcd_.mu_);
  response->mutable_header()->set_revision(etcd_.revision_);
  auto found = etcd_.data_.find(request->key());
  if (found != etcd_.data_.end()) {
    *response->add_kvs() = found->second;
    response->set_count(1);
  }
  return FinishOk(context);
}

grpc::ServerUnaryReactor* FakeEtcd::KvService::Put(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::PutRequest* request,
                                                   etcdserverpb::PutResponse* response) {
  response->mutable_header()->set_revision(etcd_.Put(request->key(), request->value()));
  return FinishOk(context);
}

grpc::ServerBidiReactor<WatchRequest, WatchResponse>* FakeEtcd::WatchService::Watch(
    grpc::CallbackServerContext* /*context*/) {
  return new FakeEtcdWatchStream(etcd_);
}

}  // namespace tokenstatus::bench
