// asyncfiber/detail/promise_inl.hpp - the definitions behind asyncfiber/promise.hpp: the
// members of Promise, Future and Callback, await_callback, and how a callback's error
// argument becomes an exception.
#pragma once

#include <asyncfiber/promise.hpp>

namespace asyncfiber {

// ======================================================================================
// Promise / Future
// ======================================================================================

template <class T>
Promise<T>& Promise<T>::operator=(Promise&& o) noexcept {
    if (this != &o) {
        abandon();
        core_ = std::move(o.core_);
        future_taken_ = o.future_taken_;
    }
    return *this;
}
template <class T>
Future<T> Promise<T>::get_future() {
    check();
    if (future_taken_) throw InvalidStateError("asyncfiber: get_future() called twice");
    future_taken_ = true;
    return Future<T>(core_);
}
template <class T>
template <class... A>
void Promise<T>::set_value(A&&... a) {
    check();
    if (!core_->emplace(std::forward<A>(a)...)) already_set();
}
template <class T>
void Promise<T>::set_exception(std::exception_ptr e) {
    check();
    if (!e) throw InvalidStateError("asyncfiber: set_exception with a null exception_ptr");
    if (!core_->set_error(std::move(e))) already_set();
}
template <class T>
void Promise<T>::already_set() const {
    if (core_->cancel_requested()) {
        detail::report_extra_completion("a Promise whose Future was cancelled");
        return;
    }
    throw InvalidStateError("asyncfiber: the promise was already set");
}
template <class T>
void Promise<T>::check() const {
    if (!core_.get()) throw InvalidStateError("asyncfiber: use of a moved-from Promise");
}
template <class T>
void Promise<T>::abandon() noexcept {
    if (core_.get()) core_->set_broken();  // no-op if it was set
}

template <class T>
T Future<T>::get() {
    check("get()");
    core_->block("af::Future::get()");
    return core_->take();
}
template <class T>
bool Future<T>::cancel() {
    check("cancel()");
    return core_->cancel();
}
template <class T>
void Future<T>::add_done_callback(detail::Callback<void()> fn) {
    check("add_done_callback()");
    core_->add_done_callback(std::move(fn));
}
template <class T>
T Future<T>::await_value() {
    check("await");
    // A value already there stays in the future if a cancellation lands at this yield.
    detail::cooperate(detail::current_task_checked("af::await(Future)"));
    core_->wait("a future", &detail::BridgeCore::forward_cancel_to_remote, core_.get(), false);
    return core_->take();
}
template <class T>
void Future<T>::check(const char* what) const {
    if (!valid())
        throw InvalidStateError(std::string("asyncfiber: ") + what + " of an empty Future");
}

// ======================================================================================
// await_callback
// ======================================================================================

namespace detail {

template <class E>
struct is_error_first : std::false_type {};
template <>
struct is_error_first<std::error_code> : std::true_type {};
template <>
struct is_error_first<boost::system::error_code> : std::true_type {};
template <>
struct is_error_first<std::exception_ptr> : std::true_type {};

/// Whether a call (A...) of a callback for T has an error in first place: an error type
/// followed by the values, or alone for T = void.
template <class T, class... A>
struct error_first_call : std::false_type {};
template <class T, class A0, class... A>
struct error_first_call<T, A0, A...>
    : std::integral_constant<bool, is_error_first<typename std::decay<A0>::type>::value &&
                                       (sizeof...(A) > 0 || std::is_void<T>::value)> {};

inline std::exception_ptr error_of(const std::error_code& ec) {
    return ec ? std::make_exception_ptr(std::system_error(ec)) : std::exception_ptr();
}
/// A boost::system::system_error for a set code (lib/bridge/bridge_core.cpp, so that this
/// header needs only the forward declaration of boost::system::error_code).
std::exception_ptr error_of(const boost::system::error_code& ec);
inline std::exception_ptr error_of(const std::exception_ptr& e) { return e; }

}  // namespace detail

template <class T>
template <class... A>
void Callback<T>::operator()(A&&... a) const {
    call(detail::error_first_call<T, A...>{}, std::forward<A>(a)...);
}
template <class T>
template <class E, class... A>
void Callback<T>::call(std::true_type, E&& e, A&&... a) const {
    std::exception_ptr err = detail::error_of(e);
    if (err)
        done(ref_.get()->set_error(std::move(err)));
    else
        done(ref_.get()->emplace(std::forward<A>(a)...));
}
template <class T>
template <class... A>
void Callback<T>::call(std::false_type, A&&... a) const {
    done(ref_.get()->emplace(std::forward<A>(a)...));
}
template <class T>
void Callback<T>::done(bool first) {
    if (!first) detail::report_extra_completion("a callback of af::await_callback");
}

template <class T, class Start>
T await_callback(Start&& start) {
    detail::TaskBase* self = detail::current_task_checked("af::await_callback");
    detail::cooperate(self);  // before start: a start that completes at once still draws
    detail::throw_if_cancelled(self);
    auto core = detail::IntrusivePtr<detail::Shared<T>>::adopt(new detail::Shared<T>);
    std::forward<Start>(start)(Callback<T>(core.get()));
    core->wait("a callback", nullptr, nullptr, true);
    return core->take();
}

}  // namespace asyncfiber
