// Internal: a move-only callable of a given signature: what the API's callback parameters take
// (Loop::call_soon and its kin, add_done_callback, the loop's handlers, a server's connection
// handler).
//
// Like std::function, it holds any callable that can be called with the arguments A... and
// whose result converts to R (for R = void, any result, discarded); unlike it, the callable
// may be move-only (a lambda that owns a std::unique_ptr, a Task, a socket), as C++23's
// std::move_only_function allows, and the header needs no <functional>. A callable of up to
// three pointers' size that moves without throwing is kept inside the object; a larger one on
// the heap. An empty callback (default-made, from nullptr, from an empty std::function or a
// null function pointer, moved from) tests false; calling it throws af::InvalidStateError.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace asyncfiber {
namespace detail {

/// Throws InvalidStateError for the call of an empty Callback (lib/runtime/errors.cpp).
[[noreturn]] void throw_empty_callback();

template <class F, class R, class... A>
struct is_callable_as {
    template <class G>
    static auto test(int) -> decltype(std::declval<G&>()(std::declval<A>()...), std::true_type{});
    template <class G>
    static std::false_type test(...);
    template <class G, class = void>
    struct converts : std::false_type {};
    template <class G>
    struct converts<G, typename std::enable_if<decltype(test<G>(0))::value>::type>
        : std::integral_constant<
              bool, std::is_void<R>::value ||
                        std::is_convertible<decltype(std::declval<G&>()(std::declval<A>()...)),
                                            R>::value> {};
    static constexpr bool value = converts<F>::value;
};

// Whether `f` holds nothing: a null function pointer, an empty std::function (anything that
// tests false). A callable that cannot be tested (most lambdas) holds something.
template <class F>
auto holds_nothing(const F& f, int) -> decltype(static_cast<bool>(f), bool()) {
    return !static_cast<bool>(f);
}
template <class F>
bool holds_nothing(const F&, long) {
    return false;
}

template <class Signature>
class Callback;

template <class R, class... A>
class Callback<R(A...)> {
    static constexpr std::size_t kInline = 3 * sizeof(void*);

    template <class F>
    using fits_inline =
        std::integral_constant<bool, sizeof(F) <= kInline && alignof(F) <= alignof(void*) &&
                                         std::is_nothrow_move_constructible<F>::value>;

public:
    Callback() noexcept = default;
    Callback(std::nullptr_t) noexcept {}  // NOLINT: converts, as std::function's does

    template <class F, class D = typename std::decay<F>::type,
              class = typename std::enable_if<!std::is_same<D, Callback>::value &&
                                              is_callable_as<D, R, A...>::value>::type>
    Callback(F&& f) {  // NOLINT: converts from any callable, as std::function's does
        if (holds_nothing<D>(f, 0)) return;
        store<D>(std::forward<F>(f), fits_inline<D>{});
    }

    Callback(Callback&& other) noexcept { take(other); }
    Callback& operator=(Callback&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    Callback& operator=(std::nullptr_t) noexcept {
        reset();
        return *this;
    }
    Callback(const Callback&) = delete;
    Callback& operator=(const Callback&) = delete;
    ~Callback() { reset(); }

    explicit operator bool() const noexcept { return ops_ != nullptr; }

    /// Calls the callable (as std::function does, a const callback calls a callable that may
    /// change its own state). Throws InvalidStateError when empty.
    R operator()(A... a) const {
        if (!ops_) throw_empty_callback();
        return ops_->call(&storage_, std::forward<A>(a)...);
    }

private:
    union Storage {
        void* heap;
        alignas(void*) unsigned char bytes[kInline];
    };
    struct Ops {
        R (*call)(Storage* s, A&&... a);
        // Moves the callable from `from` into the empty `to` and leaves `from` empty.
        void (*move)(Storage* to, Storage* from) noexcept;
        void (*destroy)(Storage* s) noexcept;
    };

    template <class F>
    struct Inline {
        static F* get(Storage* s) noexcept { return reinterpret_cast<F*>(s->bytes); }
        static R call(Storage* s, A&&... a) {
            return static_cast<R>((*get(s))(std::forward<A>(a)...));
        }
        static void move(Storage* to, Storage* from) noexcept {
            ::new (static_cast<void*>(to->bytes)) F(std::move(*get(from)));
            get(from)->~F();
        }
        static void destroy(Storage* s) noexcept { get(s)->~F(); }
        static constexpr Ops ops{&call, &move, &destroy};
    };
    template <class F>
    struct Heap {
        static F* get(Storage* s) noexcept { return static_cast<F*>(s->heap); }
        static R call(Storage* s, A&&... a) {
            return static_cast<R>((*get(s))(std::forward<A>(a)...));
        }
        static void move(Storage* to, Storage* from) noexcept { to->heap = from->heap; }
        static void destroy(Storage* s) noexcept { delete get(s); }
        static constexpr Ops ops{&call, &move, &destroy};
    };

    template <class D, class F>
    void store(F&& f, std::true_type) {
        ::new (static_cast<void*>(storage_.bytes)) D(std::forward<F>(f));
        ops_ = &Inline<D>::ops;
    }
    template <class D, class F>
    void store(F&& f, std::false_type) {
        storage_.heap = new D(std::forward<F>(f));
        ops_ = &Heap<D>::ops;
    }
    void take(Callback& other) noexcept {
        if (!other.ops_) return;
        other.ops_->move(&storage_, &other.storage_);
        ops_ = other.ops_;
        other.ops_ = nullptr;
    }
    void reset() noexcept {
        if (!ops_) return;
        const Ops* ops = ops_;
        ops_ = nullptr;
        ops->destroy(&storage_);
    }

    const Ops* ops_ = nullptr;
    mutable Storage storage_;
};

// The out-of-class definitions that C++14 needs for odr-used static constexpr members.
template <class R, class... A>
template <class F>
constexpr typename Callback<R(A...)>::Ops Callback<R(A...)>::Inline<F>::ops;
template <class R, class... A>
template <class F>
constexpr typename Callback<R(A...)>::Ops Callback<R(A...)>::Heap<F>::ops;

}  // namespace detail
}  // namespace asyncfiber
