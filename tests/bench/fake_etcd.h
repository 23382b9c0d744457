#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/support/server_callback.h"

namespace tokenstatus::bench {

class FakeEtcdWatchStream;

// An in-process stand-in for etcd's KV (Range, Put) and Watch services, for the bench's tests:
// keys in a map, one revision counter. Each Put takes the next revision and its event goes to
// every watcher whose range holds the key; with BatchPairs(), the events of two consecutive puts
// go out in one WatchResponse (the first is held until the second), as etcd may batch events.
// A Watch stream serves the first create request it reads (answered "created"), from now.
// Register both services (kv(), watch()) with one server. Thread-safe.
class FakeEtcd {
 public:
  FakeEtcd();
  FakeEtcd(const FakeEtcd&) = delete;
  FakeEtcd& operator=(const FakeEtcd&) = delete;

  grpc::Service* kv() { return &kv_; }
  grpc::Service* watch() { return &watch_; }

  void BatchPairs();
  // The Puts served so far, and the distinct keys they wrote.
  int64_t puts() const;
  size_t keys() const;

  // For FakeEtcdWatchStream: registers `stream`, watching [key, range_end) (just `key` if
  // range_end is empty) from now, and sends it the "created" response; Forget unregisters it.
  void Register(FakeEtcdWatchStream* stream, const std::string& key, const std::string& range_end);
  void Forget(FakeEtcdWatchStream* stream);

 private:
  class KvService final : public etcdserverpb::KV::CallbackService {
   public:
    explicit KvService(FakeEtcd& etcd) : etcd_(etcd) {}
    grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                    const etcdserverpb::RangeRequest* request,
                                    etcdserverpb::RangeResponse* response) override;
    grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                  const etcdserverpb::PutRequest* request,
                                  etcdserverpb::PutResponse* response) override;

   private:
    FakeEtcd& etcd_;
  };
  class WatchService final : public etcdserverpb::Watch::CallbackService {
   public:
    explicit WatchService(FakeEtcd& etcd) : etcd_(etcd) {}
    grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
        grpc::CallbackServerContext* context) override;

   private:
    FakeEtcd& etcd_;
  };
  struct Watcher {
    FakeEtcdWatchStream* stream;
    std::string key;
    std::string range_end;
  };

  // Stores the pair, takes the next revision and sends (or holds) its event; returns the
  // revision.
  int64_t Put(const std::string& key, const std::string& value);

  KvService kv_;
  WatchService watch_;
  mutable absl::Mutex mu_;
  std::map<std::string, mvccpb::KeyValue> data_ ABSL_GUARDED_BY(mu_);
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 1;  // etcd starts at 1
  int64_t puts_ ABSL_GUARDED_BY(mu_) = 0;
  bool batch_pairs_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<mvccpb::Event> held_ ABSL_GUARDED_BY(mu_);  // with BatchPairs: the held event
  std::vector<Watcher> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tokenstatus::bench
