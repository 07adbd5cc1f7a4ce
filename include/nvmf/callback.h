// Callback<Sig>: a move-free, allocation-free callable for the data path.
//
// std::function may allocate when a lambda captures more than two pointers; the data path
// promises no allocation per I/O, so callbacks here store their callable inline. The
// callable must be trivially copyable (capture pointers and integers, not std::string or
// shared_ptr) and at most kCapacity bytes: both are checked at compile time.
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace nvmf {

template <class Sig>
class Callback;

template <class R, class... Args>
class Callback<R(Args...)> {
 public:
  static constexpr size_t kCapacity = 32;

  Callback() = default;
  Callback(std::nullptr_t) {}  // NOLINT: implicit, so that nullptr reads naturally

  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Callback> &&
                                              std::is_invocable_r_v<R, F&, Args...>>>
  Callback(F f) {  // NOLINT: implicit from lambdas, by design
    using Fn = std::decay_t<F>;
    static_assert(std::is_trivially_copyable_v<Fn>,
                  "Callback captures must be trivially copyable (pointers, integers)");
    static_assert(sizeof(Fn) <= kCapacity, "Callback captures too large");
    static_assert(alignof(Fn) <= alignof(std::max_align_t));
    ::new (static_cast<void*>(storage_)) Fn(f);
    invoke_ = [](const void* s, Args... a) -> R {
      return (*static_cast<Fn*>(const_cast<void*>(s)))(std::forward<Args>(a)...);
    };
  }

  explicit operator bool() const { return invoke_ != nullptr; }
  R operator()(Args... a) const { return invoke_(storage_, std::forward<Args>(a)...); }

 private:
  alignas(std::max_align_t) unsigned char storage_[kCapacity] = {};
  R (*invoke_)(const void*, Args...) = nullptr;
};

}  // namespace nvmf
