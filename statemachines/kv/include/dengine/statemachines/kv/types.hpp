#pragma once
/// Value types of the KV state machine, mirroring etcd's mvccpb messages: KeyValue, Event, and the
/// revision and lease id types (both int64 in etcd, so they are signed here too).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace dengine::kv {

/// A store revision (etcd's main revision). A fresh store is at revision 1; every mutating
/// operation raises it by exactly one.
using Revision = std::int64_t;
/// A lease id. 0 means "no lease" (etcd's NoLease); granted ids are positive.
using LeaseId = std::int64_t;

inline constexpr LeaseId no_lease = 0;

/// One key's state at one revision (etcd's mvccpb.KeyValue).
/// Invariants for a live key: version >= 1, create_revision <= mod_revision.
struct KeyValue {
  std::string key{};
  Revision create_revision =
      0;                      ///< revision of the put that created the key (since its last delete)
  Revision mod_revision = 0;  ///< revision of the last change to the key
  std::int64_t version = 0;   ///< puts since creation; a delete resets it (0 = absent)
  std::string value{};
  LeaseId lease = no_lease;  ///< the lease the key is attached to, 0 for none

  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

/// What an Event records (etcd's mvccpb.Event.EventType: PUT = 0, DELETE = 1).
enum class EventType : std::uint8_t {
  put = 0,  ///< the key was created or updated
  del = 1,  ///< the key was deleted (etcd's DELETE)
};

/// One change to one key, as watchers see it (etcd's mvccpb.Event). The event's revision is
/// kv.mod_revision. For a delete, kv holds only the key and mod_revision.
struct Event {
  EventType type = EventType::put;
  KeyValue kv;
  std::optional<KeyValue> prev_kv{};  ///< the key before the change, if it existed

  friend bool operator==(const Event&, const Event&) = default;
};

/// A copyable, comparable owning pointer: lets recursive messages (a txn inside a txn) live in a
/// std::variant by value. Never null once constructed from a value.
template <class T>
class box {
 public:
  /// Holds a default-constructed T.
  box() : p_(std::make_unique<T>()) {}
  // Implicit on purpose (hence the NOLINTs): a box<T> stands in for a T inside variants and
  // aggregates, so initializing one from a T must read as it would for the T itself.
  /// Holds a copy of v.
  box(const T& v) : p_(std::make_unique<T>(v)) {}  // NOLINT(google-explicit-constructor)
  /// Holds v.
  box(T&& v) : p_(std::make_unique<T>(std::move(v))) {}  // NOLINT(google-explicit-constructor)
  box(const box& o) : p_(std::make_unique<T>(*o.p_)) {}
  box(box&& o) noexcept = default;
  box& operator=(const box& o) {
    if (this != &o) p_ = std::make_unique<T>(*o.p_);
    return *this;
  }
  box& operator=(box&& o) noexcept = default;
  ~box() = default;

  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }

  friend bool operator==(const box& a, const box& b) { return *a.p_ == *b.p_; }

 private:
  std::unique_ptr<T> p_;
};

}  // namespace dengine::kv
