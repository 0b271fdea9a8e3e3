#pragma once
/// A move-only type-erased callable (std::function needs copyable targets; Asio completion
/// handlers and promises are move-only). C++23's std::move_only_function, for C++20.

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace dengine::node {

template <class Signature>
class unique_function;

/// Holds any callable invocable as R(Args...), including move-only ones. Empty when
/// default-constructed or moved from; calling an empty one is undefined (checked by callers).
template <class R, class... Args>
class unique_function<R(Args...)> {
 public:
  unique_function() = default;
  /// Wraps `f` (moved in). Implicit, as std::function's: a callable converts. The requires
  /// clause keeps it from hiding the move constructor (clang-tidy 14 does not read it).
  // NOLINTBEGIN(google-explicit-constructor,bugprone-forwarding-reference-overload)
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, unique_function> &&
           std::is_invocable_r_v<R, std::decay_t<F>&, Args...>) unique_function(F&& f)
      : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  // NOLINTEND(google-explicit-constructor,bugprone-forwarding-reference-overload)

  unique_function(unique_function&&) noexcept = default;
  unique_function& operator=(unique_function&&) noexcept = default;
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  ~unique_function() = default;

  /// Invokes the target. Precondition: not empty.
  R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }
  /// True when a target is held.
  explicit operator bool() const noexcept { return impl_ != nullptr; }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual R call(Args... args) = 0;
  };
  template <class F>
  struct Impl final : Base {
    explicit Impl(F&& g) : f(std::move(g)) {}
    explicit Impl(const F& g) : f(g) {}
    R call(Args... args) override { return std::invoke(f, std::forward<Args>(args)...); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

}  // namespace dengine::node
