#pragma once
/// AnyTransport: a Transport chosen at run time. EmbeddedEngine runs its node over one, so the
/// same engine type serves an in-process cluster (LocalTransport on a LocalHub) and members in
/// separate processes (net::AsioTransport) — the choice is the EngineConfig's, not the type's.
///
/// The cost is one virtual call per message sent and per configuration change; the wrapped
/// transport's own work (a queue push, a socket write) dwarfs it.

#include <concepts>
#include <memory>
#include <type_traits>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/raft/message.hpp"

namespace dengine::node {

class AnyTransport {
 public:
  /// Wraps `t` (moved in). A MembershipAwareTransport keeps hearing of configuration changes.
  template <Transport T>
  requires(!std::same_as<std::remove_cvref_t<T>, AnyTransport>) explicit AnyTransport(T t)
      : impl_(std::make_unique<Model<T>>(std::move(t))) {}

  AnyTransport(AnyTransport&&) noexcept = default;
  AnyTransport& operator=(AnyTransport&&) noexcept = default;
  AnyTransport(const AnyTransport&) = delete;
  AnyTransport& operator=(const AnyTransport&) = delete;
  ~AnyTransport() = default;

  result<void> start(InboundHandler inbound) { return impl_->start(std::move(inbound)); }
  void send(raft::Message m) { impl_->send(std::move(m)); }
  void stop() { impl_->stop(); }
  void on_membership(const Membership& m) { impl_->on_membership(m); }

  /// The wrapped transport if it is a T, else nullptr (e.g. to read an AsioTransport's port).
  template <Transport T>
  [[nodiscard]] T* get() noexcept {
    auto* model = dynamic_cast<Model<T>*>(impl_.get());
    return model != nullptr ? &model->transport : nullptr;
  }

 private:
  struct Interface {
    Interface() = default;
    Interface(const Interface&) = delete;
    Interface& operator=(const Interface&) = delete;
    Interface(Interface&&) = delete;
    Interface& operator=(Interface&&) = delete;
    virtual ~Interface() = default;
    virtual result<void> start(InboundHandler inbound) = 0;
    virtual void send(raft::Message m) = 0;
    virtual void stop() = 0;
    virtual void on_membership(const Membership& m) = 0;
  };

  template <Transport T>
  struct Model final : Interface {
    explicit Model(T t) : transport(std::move(t)) {}
    result<void> start(InboundHandler inbound) override {
      return transport.start(std::move(inbound));
    }
    void send(raft::Message m) override { transport.send(std::move(m)); }
    void stop() override { transport.stop(); }
    void on_membership(const Membership& m) override { tell_membership(transport, m); }
    T transport;
  };

  std::unique_ptr<Interface> impl_;
};

static_assert(MembershipAwareTransport<AnyTransport>);

}  // namespace dengine::node
