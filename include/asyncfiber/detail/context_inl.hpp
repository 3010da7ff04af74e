// Internal: the definitions of the templates that asyncfiber/context.hpp declares (Context's
// accessors, ContextVar, bind_thread_local).
#pragma once

#include <asyncfiber/context.hpp>

namespace asyncfiber {

template <class T>
bool Context::contains(const ContextVar<T>& var) const noexcept {
    detail::ContextValue keep;
    return detail::context_find(impl_.get(), detail::Access::var_id(var), keep) != nullptr;
}

template <class T>
T Context::get(const ContextVar<T>& var) const {
    detail::ContextValue keep;
    const void* v = detail::context_find(impl_.get(), detail::Access::var_id(var), keep);
    if (!v) detail::throw_lookup_error(var.name());
    return *static_cast<const T*>(v);
}

template <class T>
T Context::get(const ContextVar<T>& var, T fallback) const {
    detail::ContextValue keep;
    const void* v = detail::context_find(impl_.get(), detail::Access::var_id(var), keep);
    return v ? *static_cast<const T*>(v) : fallback;
}

template <class T>
T ContextVar<T>::Token::old_value() const {
    if (!has_old_value()) detail::throw_lookup_error("Token.old_value");
    // The token's own reference keeps the value alive.
    return *static_cast<const T*>(detail::context_value(detail::token_old_value(st_.get())));
}

template <class T>
ContextVar<T>::ContextVar(std::string name)
    : core_(detail::new_context_var(std::move(name), detail::ContextValue())),
      id_(detail::context_var_id(core_.get())) {}

template <class T>
ContextVar<T>::ContextVar(std::string name, T default_value)
    : core_(detail::new_context_var(
          std::move(name), detail::make_context_value(detail::ValueOpsOf<T>::ops, &default_value))),
      id_(detail::context_var_id(core_.get())) {}

template <class T>
T ContextVar<T>::value_or_default(const void* found) const {
    if (found) return *static_cast<const T*>(found);
    // The variable's own reference keeps its default alive.
    if (const detail::ValueBox* d = detail::context_var_default(core_.get()))
        return *static_cast<const T*>(detail::context_value(d));
    detail::throw_lookup_error(name());
}

template <class T>
T ContextVar<T>::get() const {
    detail::ContextValue keep;
    return value_or_default(detail::context_find(detail::current_context_or_null(), id_, keep));
}

template <class T>
T ContextVar<T>::get(T fallback) const {
    detail::ContextValue keep;
    const void* v = detail::context_find(detail::current_context_or_null(), id_, keep);
    return v ? *static_cast<const T*>(v) : fallback;
}

template <class T>
typename ContextVar<T>::Token ContextVar<T>::set(T value) {
    return Token(
        detail::context_set(id_, detail::make_context_value(detail::ValueOpsOf<T>::ops, &value)));
}

template <class T>
void ContextVar<T>::reset(Token token) {
    detail::context_reset(id_, token.st_);
}

namespace detail {
/// The BindingOps of a thread_local of type T.
template <class T>
struct BindingOpsOf {
    using Accessor = T& (*)();
    static void* copy_current(void (*acc)()) { return new T(reinterpret_cast<Accessor>(acc)()); }
    static void exchange(void (*acc)(), void* value) noexcept {
        using std::swap;
        swap(reinterpret_cast<Accessor>(acc)(), *static_cast<T*>(value));
    }
    static void destroy(void* value) noexcept { delete static_cast<T*>(value); }
};
}  // namespace detail

template <class T>
ThreadLocalBinding bind_thread_local(T& (*accessor)()) {
    static_assert(std::is_copy_constructible<T>::value, "a bound thread_local must be copyable");
    static_assert(
        std::is_nothrow_move_constructible<T>::value && std::is_nothrow_move_assignable<T>::value,
        "a bound thread_local is swapped at every switch: its moves must not throw");
    if (!accessor) throw std::invalid_argument("asyncfiber: bind_thread_local needs an accessor");
    detail::BindingOps ops{reinterpret_cast<void (*)()>(accessor),
                           &detail::BindingOpsOf<T>::copy_current,
                           &detail::BindingOpsOf<T>::exchange, &detail::BindingOpsOf<T>::destroy};
    return detail::Access::make<ThreadLocalBinding>(detail::register_binding(ops));
}

}  // namespace asyncfiber
