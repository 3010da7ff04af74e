// asyncfiber/detail/use_await_inl.hpp - the definitions behind asyncfiber/use_await.hpp:
// use_await_t's members, the handler and the async_result that make af::use_await a
// Boost.Asio completion token, and the report of an operation whose task stopped waiting.
#pragma once

#include <asyncfiber/use_await.hpp>

namespace asyncfiber {

// ======================================================================================
// use_await: the Boost.Asio completion token
// ======================================================================================

namespace detail {
template <class IoObject>
bool cancel_io_object(void* obj) {
    static_cast<IoObject*>(obj)->cancel();
    return false;  // the task wakes at once; the aborted handler finds nobody
}
}  // namespace detail

inline use_await_t use_await_t::operator[](boost::system::error_code& ec) const noexcept {
    use_await_t t(*this);
    t.ec_ = &ec;
    return t;
}
template <class IoObject>
use_await_t use_await_t::cancels(IoObject& obj) const noexcept {
    use_await_t t(*this);
    t.cancel_.fn = &detail::cancel_io_object<IoObject>;
    t.cancel_.obj = &obj;
    return t;
}

namespace detail {

/// How an operation whose task stopped waiting completed (see use_await_t).
enum class OrphanedCompletion : std::uint8_t { aborted, failed, without_result, with_result };
/// Reports an operation that completed after its task had stopped waiting, on the loop's
/// thread: always when it carried a result and its I/O object was not named with
/// .cancels(obj), otherwise in debug mode only; never when it was aborted.
void report_orphaned_completion(OrphanedCompletion how, bool object_named) noexcept;

template <class... A>
OrphanedCompletion orphaned_completion(std::true_type /*error code first*/,
                                       const boost::system::error_code& ec, const A&...) {
    if (ec == boost::asio::error::operation_aborted) return OrphanedCompletion::aborted;
    if (ec) return OrphanedCompletion::failed;
    return sizeof...(A) > 0 ? OrphanedCompletion::with_result : OrphanedCompletion::without_result;
}
template <class... A>
OrphanedCompletion orphaned_completion(std::false_type, const A&...) {
    return sizeof...(A) > 0 ? OrphanedCompletion::with_result : OrphanedCompletion::without_result;
}

template <class... A>
struct starts_with_error_code : std::false_type {};
template <class A0, class... A>
struct starts_with_error_code<A0, A...>
    : std::is_same<typename std::decay<A0>::type, boost::system::error_code> {};

template <class Stored>
class UseAwaitHandler {
public:
    // The loop's io_context's executor, with a share in its life: see loop_executor.hpp.
    using executor_type = LoopExecutor;
    UseAwaitHandler(Shared<Stored>* core, executor_type ex, bool object_named) noexcept
        : ref_(core), ex_(std::move(ex)), object_named_(object_named) {}
    UseAwaitHandler(UseAwaitHandler&&) noexcept = default;
    UseAwaitHandler(const UseAwaitHandler&) = default;
    const executor_type& get_executor() const noexcept { return ex_; }

    template <class... A>
    void operator()(A&&... a) {
        // Handlers run on the loop's thread, where the waiting task leaves: nothing changes
        // between this look and the emplace.
        if (ref_.get()->abandoned())
            report_orphaned_completion(orphaned_completion(starts_with_error_code<A...>{}, a...),
                                       object_named_);
        if (!ref_.get()->emplace(std::forward<A>(a)...))
            report_extra_completion("a Boost.Asio handler of af::use_await");
    }

private:
    CompleterRef<Shared<Stored>> ref_;
    executor_type ex_;
    bool object_named_;
};

template <class... V>
struct use_await_value {
    using type = std::tuple<V...>;
};
template <class V>
struct use_await_value<V> {
    using type = V;
};
template <>
struct use_await_value<> {
    using type = void;
};

template <std::size_t Off, class Tup>
void extract_values(Tup&, std::index_sequence<>) {}
template <std::size_t Off, class Tup, std::size_t I>
typename std::tuple_element<Off + I, Tup>::type extract_values(Tup& t, std::index_sequence<I>) {
    return std::move(std::get<Off + I>(t));
}
template <std::size_t Off, class Tup, std::size_t I0, std::size_t I1, std::size_t... Is>
std::tuple<typename std::tuple_element<Off + I0, Tup>::type,
           typename std::tuple_element<Off + I1, Tup>::type,
           typename std::tuple_element<Off + Is, Tup>::type...>
extract_values(Tup& t, std::index_sequence<I0, I1, Is...>) {
    return std::tuple<typename std::tuple_element<Off + I0, Tup>::type,
                      typename std::tuple_element<Off + I1, Tup>::type,
                      typename std::tuple_element<Off + Is, Tup>::type...>(
        std::move(std::get<Off + I0>(t)), std::move(std::get<Off + I1>(t)),
        std::move(std::get<Off + Is>(t))...);
}

inline void check_asio_error(const boost::system::error_code& ec, boost::system::error_code* out) {
    if (out)
        *out = ec;
    else if (ec)
        throw boost::system::system_error(ec);
}

/// async_result for use_await: HasEc says whether the signature starts with an error code;
/// V are the other (decayed) arguments.
template <bool HasEc, class... V>
class UseAwaitResult {
    using Stored = typename std::conditional<HasEc, std::tuple<boost::system::error_code, V...>,
                                             std::tuple<V...>>::type;
    static constexpr std::size_t kOff = HasEc ? 1 : 0;

public:
    using return_type = typename use_await_value<V...>::type;
    using completion_handler_type = UseAwaitHandler<Stored>;

    template <class Initiation, class RawToken, class... IArgs>
    static return_type initiate(Initiation&& init, RawToken&& token, IArgs&&... iargs) {
        const use_await_t tok = token;
        TaskBase* self = current_task_checked("af::use_await");
        cooperate(self);           // before the operation starts: a cancellation here loses nothing
        throw_if_cancelled(self);  // a pending cancellation: do not even start the operation
        auto core = IntrusivePtr<Shared<Stored>>::adopt(new Shared<Stored>);
        std::forward<Initiation>(init)(
            UseAwaitHandler<Stored>(core.get(), current_loop_executor(), tok.cancel_.fn != nullptr),
            std::forward<IArgs>(iargs)...);
        core->wait("a Boost.Asio operation", tok.cancel_.fn, tok.cancel_.obj, true);
        Stored v = core->take();
        check(v, tok.ec_, std::integral_constant<bool, HasEc>{});
        return extract_values<kOff>(v, std::index_sequence_for<V...>{});
    }

private:
    static void check(Stored& v, boost::system::error_code* out, std::true_type) {
        check_asio_error(std::get<0>(v), out);
    }
    static void check(Stored&, boost::system::error_code* out, std::false_type) {
        if (out) out->clear();
    }
};

}  // namespace detail
}  // namespace asyncfiber

namespace boost {
namespace asio {

template <class R, class... Args>
class async_result<::asyncfiber::use_await_t, R(boost::system::error_code, Args...)>
    : public ::asyncfiber::detail::UseAwaitResult<true, typename std::decay<Args>::type...> {};

template <class R, class... Args>
class async_result<::asyncfiber::use_await_t, R(const boost::system::error_code&, Args...)>
    : public ::asyncfiber::detail::UseAwaitResult<true, typename std::decay<Args>::type...> {};

template <class R, class... Args>
class async_result<::asyncfiber::use_await_t, R(Args...)>
    : public ::asyncfiber::detail::UseAwaitResult<false, typename std::decay<Args>::type...> {};

}  // namespace asio
}  // namespace boost
