// asyncfiber/bridge.hpp - from callbacks and threads to await, and back.
//
// - af::Promise<T> / af::Future<T>: a one-shot value set from any thread, awaited by a task.
// - af::await_callback<T>(start): awaits a callback-style API (start(cb) hands cb over).
// - af::to_thread(fn, args...): runs a blocking function on the loop's thread pool.
// - af::run_coroutine_threadsafe(loop, fn, args...): starts a task from a foreign thread
//   (its af::ConcurrentFuture, in concurrent_future.hpp, can cancel it).
// - af::use_await: a Boost.Asio completion token that suspends only the calling task.
//
// Safety rules shared by all of them: the awaiting task and the completing side share one
// reference-counted heap block and nothing else, so a completion that arrives late (after the
// task was cancelled or finished), on any thread, never touches the task's memory; it is
// dropped (and, for use_await, reported when it carried a result). to_thread goes further: a
// cancelled task waits for its function, which may reach into the task's frame. See
// docs/migrating-callbacks.md.
#pragma once

#include <asyncfiber/concurrent_future.hpp>
#include <asyncfiber/detail/bridge_core.hpp>
#include <asyncfiber/detail/wait.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/task.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

namespace asyncfiber {

// ======================================================================================
// Promise / Future
// ======================================================================================

template <class T>
class Future;

/// The producing side of a one-shot value. set_value / set_exception may be called from any
/// thread (one call in all: a second throws InvalidStateError; one after the future was
/// cancelled is ignored and reported on stderr, as legacy code cannot know). Destroyed unset,
/// it makes the await of its future throw BrokenPromise. Move-only.
template <class T>
class Promise {
public:
    Promise() : core_(detail::CoreRef<detail::Shared<T>>::adopt(new detail::Shared<T>)) {}
    Promise(Promise&&) noexcept = default;
    Promise& operator=(Promise&& o) noexcept {
        if (this != &o) {
            abandon();
            core_ = std::move(o.core_);
            future_taken_ = o.future_taken_;
        }
        return *this;
    }
    Promise(const Promise&) = delete;
    Promise& operator=(const Promise&) = delete;
    ~Promise() { abandon(); }

    /// The future that receives the value; once only (InvalidStateError after).
    Future<T> get_future() {
        check();
        if (future_taken_) throw InvalidStateError("asyncfiber: get_future() called twice");
        future_taken_ = true;
        return Future<T>(core_);
    }
    /// Any thread. For Promise<void>: set_value().
    template <class... A>
    void set_value(A&&... a) {
        check();
        if (!core_->emplace(std::forward<A>(a)...)) already_set();
    }
    /// Any thread.
    void set_exception(std::exception_ptr e) {
        check();
        if (!e) throw InvalidStateError("asyncfiber: set_exception with a null exception_ptr");
        if (!core_->set_error(std::move(e))) already_set();
    }

private:
    void already_set() const {
        if (core_->cancel_requested()) {
            detail::report_extra_completion("a Promise whose Future was cancelled");
            return;
        }
        throw InvalidStateError("asyncfiber: the promise was already set");
    }
    void check() const {
        if (!core_.get()) throw InvalidStateError("asyncfiber: use of a moved-from Promise");
    }
    void abandon() noexcept {
        if (core_.get()) core_->set_broken();  // no-op if it was set
    }
    detail::CoreRef<detail::Shared<T>> core_;
    bool future_taken_ = false;
};

namespace detail {
struct FutureAccess;
}

/// The awaiting side: `T v = af::await(fut);` in a task, `fut.get()` on a plain thread. One
/// task may wait at a time; the value is moved out by the first successful await or get (a
/// second throws InvalidStateError). Cancelling the awaiting task does not affect the
/// promise: a value set later stays in the future and a new await gets it.
///
/// A future from Runtime::spawn_on stands for a task on another loop: cancel(), or cancelling
/// the task that awaits it, cancels that task, and the await ends when it has ended.
template <class T>
class Future {
public:
    Future() noexcept = default;
    bool valid() const noexcept { return core_.get() != nullptr; }
    /// Any thread: whether a value, an exception or a broken promise is there.
    bool ready() const { return valid() && core_->ready(); }
    /// Any thread: the same as ready() (concurrent.futures' name).
    bool done() const { return ready(); }

    /// Internal: use af::await(future).
    T await_value() {
        check("await");
        // A value already there stays in the future if a cancellation lands at this yield.
        detail::cooperate(detail::current_task_checked("af::await(Future)"));
        core_->wait("a future", &detail::BridgeCore::forward_cancel_to_remote, core_.get(), false);
        return core_->take();
    }

    /// On a plain thread: blocks until the future is done, then returns (moves out) its value
    /// or rethrows its exception (CancelledError once cancelled, BrokenPromise). Throws
    /// RuntimeError on a thread that runs a loop (in a task, af::await(fut) is the way).
    T get() {
        check("get()");
        core_->block("af::Future::get()");
        return core_->take();
    }

    /// Any thread. A pending future of a Promise is done at once with CancelledError (a
    /// later set on the promise is ignored and reported); one from Runtime::spawn_on asks its
    /// task to stop, and is done, with CancelledError, once that task has ended. Returns true
    /// when the future is (or will be) cancelled, false (changing nothing) when it is done
    /// otherwise.
    bool cancel() {
        check("cancel()");
        return core_->cancel();
    }

    /// Any thread: `fn()` runs once the future is done, on the thread that completes it (the
    /// promise's, the remote loop's), or at once on this thread if it is done already. fn
    /// must not block; an exception from it is reported on stderr.
    void add_done_callback(std::function<void()> fn) {
        check("add_done_callback()");
        core_->add_done_callback(std::move(fn));
    }

private:
    friend class Promise<T>;
    friend struct detail::FutureAccess;
    explicit Future(detail::CoreRef<detail::Shared<T>> c) noexcept : core_(std::move(c)) {}
    void check(const char* what) const {
        if (!valid()) throw InvalidStateError(std::string("asyncfiber: ") + what + " of an empty Future");
    }
    detail::CoreRef<detail::Shared<T>> core_;
};

namespace detail {
/// Makes a Future over a core that something else than a Promise completes (spawn_on).
struct FutureAccess {
    template <class T>
    static Future<T> make(CoreRef<Shared<T>> core) {
        return Future<T>(std::move(core));
    }
};
}  // namespace detail

/// Suspends the calling task until the future's promise is set; returns (moves out) its
/// value, rethrows its exception, or throws BrokenPromise.
template <class T>
T await(Future<T>& f) {
    return f.await_value();
}
template <class T>
T await(Future<T>&& f) {
    return f.await_value();
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
inline std::exception_ptr error_of(const boost::system::error_code& ec) {
    return ec ? std::make_exception_ptr(boost::system::system_error(ec)) : std::exception_ptr();
}
inline std::exception_ptr error_of(const std::exception_ptr& e) { return e; }

}  // namespace detail

/// The callback af::await_callback<T> hands to `start`. Copyable; callable once from any
/// thread with one of the shapes: (value), (values...) for a tuple T, () for T = void, or
/// any of these preceded by a std::error_code, a boost::system::error_code or a
/// std::exception_ptr (a set error throws std::system_error, boost::system::system_error or
/// the exception at the await; the values are then ignored).
template <class T>
class Callback {
public:
    explicit Callback(detail::Shared<T>* core) : ref_(core) {}

    template <class... A>
    void operator()(A&&... a) const {
        call(detail::error_first_call<T, A...>{}, std::forward<A>(a)...);
    }

private:
    template <class E, class... A>
    void call(std::true_type, E&& e, A&&... a) const {
        std::exception_ptr err = detail::error_of(e);
        if (err)
            done(ref_.get()->set_error(std::move(err)));
        else
            done(ref_.get()->emplace(std::forward<A>(a)...));
    }
    template <class... A>
    void call(std::false_type, A&&... a) const {
        done(ref_.get()->emplace(std::forward<A>(a)...));
    }
    static void done(bool first) {
        if (!first) detail::report_extra_completion("a callback of af::await_callback");
    }
    detail::CompleterRef<detail::Shared<T>> ref_;
};

/// Calls start(cb) and suspends the calling task until cb is called (on any thread, possibly
/// before start returns); returns the value cb was given. cb dropped uncalled (every copy
/// destroyed): BrokenPromise. A second call: ignored, reported on stderr. If the task is
/// cancelled it wakes with CancelledError at once; a later call of cb is dropped.
/// Exceptions from start propagate (cb may then still be called; it is ignored).
template <class T, class Start>
T await_callback(Start&& start) {
    detail::TaskBase* self = detail::current_task_checked("af::await_callback");
    detail::cooperate(self);  // before start: a start that completes at once still draws
    detail::throw_if_cancelled(self);
    auto core = detail::CoreRef<detail::Shared<T>>::adopt(new detail::Shared<T>);
    std::forward<Start>(start)(Callback<T>(core.get()));
    core->wait("a callback", nullptr, nullptr, true);
    return core->take();
}

// ======================================================================================
// to_thread and the loop's thread pool
// ======================================================================================

/// The number of threads of a loop's pool when it is created (lazily, by the first
/// to_thread): min(32, hardware threads + 4) unless changed. Affects pools created later.
std::size_t default_executor_size() noexcept;
void set_default_executor_size(std::size_t threads);
/// Bounds this loop's pool. Threads are started on demand up to the bound; lowering it lets
/// surplus threads end once idle. Call before the loop runs or on its thread. Throws
/// std::invalid_argument for 0 (also set_default_executor_size), RuntimeError once closed.
void set_executor_size(Loop& loop, std::size_t threads);

/// The tag of `af::to_thread(af::abandon_on_cancel, fn, args...)`.
struct AbandonOnCancel {};
/// Makes to_thread leave fn behind when its task is cancelled (see to_thread).
constexpr AbandonOnCancel abandon_on_cancel{};

namespace detail {
/// A job queued on a loop's pool (lib/thread_pool.cpp).
class PoolJob;
/// Queues `job` on the pool of the loop running on this thread (created on first use, shut
/// down and joined by Loop::close after the queued jobs ran). The handle lets the task that
/// submitted it take it back while no thread has started it.
std::shared_ptr<PoolJob> submit_to_pool(std::function<void()> job);
/// What cancelling a task in to_thread does (BridgeCore::wait's on_cancel; `job` is a
/// PoolJob). Both take a job that has not started out of the queue: it never runs and the
/// task wakes at once. Of a job that runs, the first waits for the end (returns true), the
/// second leaves it behind (returns false).
bool withdraw_or_wait_for(void* job);
bool withdraw_or_abandon(void* job);

template <class F, class... Args>
async_result_t<F, Args...> run_in_pool(bool abandon, F&& fn, Args&&... args) {
    using R = async_result_t<F, Args...>;
    using Job = std::tuple<typename std::decay<F>::type, std::tuple<typename std::decay<Args>::type...>>;
    TaskBase* self = current_task_checked("af::to_thread");
    throw_if_cancelled(self);
    auto core = CoreRef<Shared<R>>::adopt(new Shared<R>);
    // shared_ptr: std::function needs a copyable target; the job itself may be move-only.
    auto job = std::make_shared<Job>(std::forward<F>(fn),
                                     std::tuple<typename std::decay<Args>::type...>(std::forward<Args>(args)...));
    CompleterRef<Shared<R>> completer(core.get());
    std::shared_ptr<PoolJob> queued = submit_to_pool([completer, job]() mutable {
        std::exception_ptr err;
        try {
            Shared<R>& out = *completer.get();
            call_and_store(std::get<0>(*job), std::get<1>(*job),
                           [&out](auto&&... v) { out.emplace(std::forward<decltype(v)>(v)...); });
        } catch (...) {
            err = std::current_exception();
        }
        job.reset();  // the callable's destructor runs here, on the pool thread
        // Handed over outside the catch block: once the task has it, this thread keeps no
        // hold on the exception object.
        if (err) completer.get()->set_error(std::move(err));
    });
    core->wait("to_thread", abandon ? &withdraw_or_abandon : &withdraw_or_wait_for, queued.get(),
               abandon);
    return core->take();
}
}  // namespace detail

/// Runs fn(args...) on the loop's thread pool and suspends the calling task until it
/// returns; returns its value or rethrows its exception (same type). fn and args are
/// decay-copied and destroyed on the pool thread.
///
/// Cancelling the task (or a timeout) while fn runs keeps the task waiting until fn has
/// returned, then throws CancelledError (fn's result is dropped): fn may capture the task's
/// locals by reference, and they are still there whenever it touches them (Trio's default,
/// for that reason). A call cancelled while its job still waits for a free thread ends at
/// once, and the job never runs (its fn and args are then destroyed on the loop's thread).
template <class F, class... Args,
          class = typename std::enable_if<!std::is_same<typename std::decay<F>::type, AbandonOnCancel>::value>::type>
detail::async_result_t<F, Args...> to_thread(F&& fn, Args&&... args) {
    return detail::run_in_pool(false, std::forward<F>(fn), std::forward<Args>(args)...);
}

/// `af::to_thread(af::abandon_on_cancel, fn, args...)`: as above, but cancelling the task
/// wakes it with CancelledError at once while fn runs on; its result is dropped when it
/// comes. Only for an fn that owns everything it touches (captures by value, arguments by
/// value): nothing of the task's frame may be reached from it once the task has moved on.
template <class F, class... Args>
detail::async_result_t<F, Args...> to_thread(AbandonOnCancel, F&& fn, Args&&... args) {
    return detail::run_in_pool(true, std::forward<F>(fn), std::forward<Args>(args)...);
}

// ======================================================================================
// run_coroutine_threadsafe
// ======================================================================================

/// From any thread: runs fn(args...) as a task of `loop` (which must be running or run
/// later) and returns an af::ConcurrentFuture of its result (a std::future<R> with done(),
/// cancelled() and cancel(); it converts to std::future<R>). The future holds the task's
/// exception, CancelledError if the task was cancelled (ConcurrentFuture::cancel() included),
/// RuntimeError("Event loop is closed") at once if the loop is closed (or closes before it
/// could start the task).
template <class F, class... Args>
ConcurrentFuture<detail::async_result_t<F, Args...>> run_coroutine_threadsafe(Loop& loop, F&& fn,
                                                                             Args&&... args) {
    using R = detail::async_result_t<F, Args...>;
    using Call = std::tuple<typename std::decay<F>::type, std::tuple<typename std::decay<Args>::type...>>;
    auto run = std::make_shared<detail::ThreadsafeRun<R>>();
    run->loop = &loop;
    auto call = std::make_shared<Call>(std::forward<F>(fn),
                                       std::tuple<typename std::decay<Args>::type...>(std::forward<Args>(args)...));
    ConcurrentFuture<R> fut(run);
    auto start = [run, call] {
        if (run->loop->is_closed()) {  // posted before it closed: fails now, as asyncio's would
            run->set = true;
            run->promise.set_exception(
                std::make_exception_ptr(RuntimeError("asyncfiber: Event loop is closed")));
            return;
        }
        Task<void> t = asyncfiber::async([run, call] {
            try {
                std::promise<R>& p = run->promise;
                detail::call_and_store(std::get<0>(*call), std::get<1>(*call), [&p](auto&&... v) {
                    p.set_value(std::forward<decltype(v)>(v)...);
                });
                run->set = true;
            } catch (const CancelledError&) {
                run->set_cancelled(std::current_exception());
                throw;  // the task counts as cancelled
            } catch (...) {
                // Handed over to the future: the task itself ends normally.
                run->promise.set_exception(std::current_exception());
                run->set = true;
            }
        });
        run->task = t.state();  // for ConcurrentFuture::cancel(), until the callback below
        t.add_done_callback([run](TaskRef) {
            run->task = nullptr;
            // Cancelled before its first step: the body never ran.
            if (!run->set) run->set_cancelled(std::make_exception_ptr(CancelledError()));
        });
    };
    try {
        loop.call_soon_threadsafe(std::move(start));
    } catch (const RuntimeError&) {  // the loop is closed: the future fails at once
        run->promise.set_exception(std::current_exception());
    }
    return fut;
}

// ======================================================================================
// use_await: the Boost.Asio completion token
// ======================================================================================

namespace detail {
struct UseAwaitCancel {
    bool (*fn)(void*) = nullptr;
    void* obj = nullptr;
};
template <class IoObject>
bool cancel_io_object(void* obj) {
    static_cast<IoObject*>(obj)->cancel();
    return false;  // the task wakes at once; the aborted handler finds nobody
}
}  // namespace detail

/// `n = boost::asio::async_read(sock, buf, af::use_await);` inside a task suspends that task
/// only. A failed operation throws boost::system::system_error; with `af::use_await[ec]` the
/// error is stored in ec instead (and ec is cleared on success).
///
/// Cancellation and timeouts: cancelling the task wakes it with CancelledError at once,
/// always. Whether the operation stops too depends on the token, because Boost 1.74 has no
/// per-operation cancellation slots and the token cannot see the I/O object the operation
/// belongs to:
/// - `af::use_await.cancels(sock)` names it: cancelling the task calls sock.cancel(), which,
///   as Asio defines it, aborts every pending operation of that object. Use it for every
///   operation under af::timeout / wait_for or in a task that may be cancelled, when the
///   object lives on after the task stops waiting (a member, a connection read again).
/// - Without it the operation runs on: it still reads, accepts or resolves, and its result
///   goes nowhere. A read left behind by a timeout takes the next reply from the socket, and
///   the following read misses it. That loss is never silent: an operation that completes
///   with a result after its task stopped waiting is reported to the loop's exception
///   handler (stderr by default), naming the remedy; in debug mode every completion of an
///   operation left behind is reported except an aborted one (operation_aborted). Buffers
///   the operation writes into must outlive it. (An I/O object destroyed by the unwinding
///   task aborts its operations itself, so a local socket or timer loses nothing.)
/// The object must outlive the await. Completion handlers run on the loop's thread through
/// its io_context, whatever executor the I/O object uses.
class use_await_t {
public:
    constexpr use_await_t() noexcept = default;
    /// Stores the error in `ec` instead of throwing.
    use_await_t operator[](boost::system::error_code& ec) const noexcept {
        use_await_t t(*this);
        t.ec_ = &ec;
        return t;
    }
    /// Cancelling the awaiting task calls `obj.cancel()` (socket, timer, resolver, signal set,
    /// or anything with a cancel() member).
    template <class IoObject>
    use_await_t cancels(IoObject& obj) const noexcept {
        use_await_t t(*this);
        t.cancel_.fn = &detail::cancel_io_object<IoObject>;
        t.cancel_.obj = &obj;
        return t;
    }

    boost::system::error_code* ec_ = nullptr;
    detail::UseAwaitCancel cancel_;
};

/// The token. `af::use_await`, `af::use_await[ec]`, `af::use_await.cancels(obj)`.
constexpr use_await_t use_await{};

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
    using executor_type = boost::asio::io_context::executor_type;
    UseAwaitHandler(Shared<Stored>* core, executor_type ex, bool object_named) noexcept
        : ref_(core), ex_(ex), object_named_(object_named) {}
    UseAwaitHandler(UseAwaitHandler&&) noexcept = default;
    UseAwaitHandler(const UseAwaitHandler&) = default;
    executor_type get_executor() const noexcept { return ex_; }

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
        cooperate(self);  // before the operation starts: a cancellation here loses nothing
        throw_if_cancelled(self);  // a pending cancellation: do not even start the operation
        auto core = CoreRef<Shared<Stored>>::adopt(new Shared<Stored>);
        std::forward<Initiation>(init)(
            UseAwaitHandler<Stored>(core.get(), Loop::current().io_context().get_executor(),
                                    tok.cancel_.fn != nullptr),
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
