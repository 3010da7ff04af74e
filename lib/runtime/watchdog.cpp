// The loop watchdog (see watchdog.hpp): its thread, the signal through which it asks the
// loop's thread for a stack trace or a task dump, and the SIGQUIT service of debug mode.
//
// Why a signal: only the loop's own thread can see its stack, and it is the thread that is
// stuck. SIGURG is the signal (as Go's runtime uses it to preempt goroutines): its default
// action is to do nothing, so one that arrives where nobody expects it is harmless, and few
// programs use it (for out-of-band socket data); the handler hands any SIGURG that is not
// the watchdog's to the handler installed before it. The handler is installed with
// SA_RESTART, so that a read() or a mutex wait the loop is stuck in goes on afterwards.
//
// In the handler only async-signal-safe work is done: the task's id and name are copied and
// glibc's backtrace() records the return addresses (the unwinder is loaded once beforehand,
// so that backtrace() does not allocate). Names, files and lines are looked up afterwards on
// the watchdog's thread with Boost.Stacktrace's libbacktrace back end, which reads the
// program's symbol tables and DWARF debug information.
#define BOOST_STACKTRACE_LINK
#define BOOST_STACKTRACE_DYN_LINK
#include "watchdog.hpp"

#include "debug_impl.hpp"
#include "io_driver.hpp"
#include "loop_impl.hpp"
#include "signal_chain.hpp"
#include "task_name.hpp"

#include <asyncfiber/detail/thread_annotations.hpp>
#include <asyncfiber/debug.hpp>

#include <boost/stacktrace/frame.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <execinfo.h>
#include <map>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <string>
#include <thread>
#include <time.h>
#include <ucontext.h>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {

constexpr int kSignal = SIGURG;
constexpr int kMaxFrames = 64;
constexpr std::size_t kNameBytes = 128;
// How long the watchdog waits for the loop's thread to answer its signal (a thread that
// blocks SIGURG never does), and how long a SIGQUIT dump may wait for the loop's next safe
// point before it is printed from the signal handler instead.
constexpr auto kAnswerTimeout = std::chrono::seconds(2);
constexpr auto kDumpGrace = std::chrono::milliseconds(50);

enum ExchangeState : int { kIdle, kRequested, kFilling, kFilled };
enum class Ask : int { trace, dump };

bool sem_wait_for(sem_t* s, Clock::duration d) noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::int64_t ns = to_ns(d);
    ts.tv_sec += static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec += static_cast<long>(ns % 1000000000);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_nsec -= 1000000000;
        ++ts.tv_sec;
    }
    for (;;) {
        if (::sem_clockwait(s, CLOCK_MONOTONIC, &ts) == 0) return true;
        if (errno != EINTR) return false;
    }
}

void sem_wait_retry(sem_t* s) noexcept {
    while (::sem_wait(s) != 0 && errno == EINTR) {
    }
}

struct sigaction g_prev_urg;
struct sigaction g_prev_quit;
std::once_flag g_urg_installed;
std::atomic<int> g_threads_running{0};  // watchdog_threads_running()

void on_watchdog_signal(int sig, siginfo_t* info, void* uctx);

void install_signal_handler() {
    // Loads the unwinder behind backtrace() now: its first call may allocate.
    void* warm[2];
    (void)::backtrace(warm, 2);
    install_handler(kSignal, &on_watchdog_signal, SA_RESTART, &g_prev_urg);
}


/// The interrupted instruction, where the platform says.
std::uintptr_t interrupted_pc(void* uctx) noexcept {
    auto* uc = static_cast<ucontext_t*>(uctx);
#if defined(__x86_64__)
    return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return static_cast<std::uintptr_t>(uc->uc_mcontext.pc);
#else
    (void)uc;
    return 0;
#endif
}

}  // namespace

class Watchdog;

// A report on its way to the handler: the running one still has raw frames.
struct PendingReport {
    const Watchdog* from = nullptr;
    WatchdogHandler handler;  // null: stderr
    WatchdogReport report;
    std::string who;        // running: "task 'x' (id 3)", "a loop callback", ...
    bool answered = false;  // running: the loop's thread answered the signal
    std::vector<void*> frames;
    std::uintptr_t pc = 0;
};

/// The watchdog thread of one loop.
class Watchdog {
public:
    explicit Watchdog(LoopImpl* L);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void set_threshold(Clock::duration d) noexcept {
        threshold_ns_.store(to_ns(d), std::memory_order_relaxed);
        ::sem_post(&wake_);
    }
    void set_handler(const WatchdogHandler& fn) {
        MutexLock lk(handler_m_);
        handler_ = fn;
    }
    /// The loop's thread enters / leaves the loop (`debug`: serve SIGQUIT meanwhile).
    void entered(bool debug) noexcept;
    void left() noexcept;
    void set_quit_service(bool on) noexcept;

    /// The signal handler's side (on the loop's thread).
    void answer(void* uctx) noexcept;
    /// A SIGQUIT arrived: from the signal handler.
    void quit_requested() noexcept {
        dump_pending_.store(true, std::memory_order_relaxed);
        ::sem_post(&wake_);
    }
    /// At the loop's safe point: prints the dump if it is still wanted.
    void serve_dump_at_safe_point() noexcept {
        if (dump_pending_.exchange(false)) write_task_dump_to_stderr(L_);
    }

    std::atomic<int> state{kIdle};  // the exchange with the handler

private:
    void run();
    /// Signals the loop's thread and waits for its answer (entered_). False when it did not
    /// answer.
    bool ask(Ask what, std::uint64_t mark) ASYNCFIBER_REQUIRES(m_);
    /// Hands a report to the reporter thread, with the handler as it is now.
    void deliver(PendingReport p);
    PendingReport ended_report(const WatchdogReport& running, Clock::duration elapsed) const;
    std::string running_who;  // the reported step, as its reports name it (watchdog thread)
    Clock::duration threshold() const noexcept {
        return std::chrono::nanoseconds(threshold_ns_.load(std::memory_order_relaxed));
    }

    LoopImpl* L_;
    std::atomic<std::int64_t> threshold_ns_{0};
    std::atomic<bool> dump_pending_{false};
    sem_t wake_;      // posted by SIGQUIT, a new threshold and stop
    sem_t answered_;  // posted by the handler
    // The question and the answer, written by one side while the other waits.
    Ask ask_ = Ask::trace;
    std::uint64_t mark_ = 0;
    bool same_step_ = false;
    std::uint64_t task_id_ = 0;
    char name_[kNameBytes];
    std::size_t name_len_ = 0;
    void* frames_[kMaxFrames];
    int nframes_ = 0;
    std::uintptr_t pc_ = 0;

    Mutex m_;  // also held for a whole exchange (ask)
    bool entered_ ASYNCFIBER_GUARDED_BY(m_) = false;
    bool stop_ ASYNCFIBER_GUARDED_BY(m_) = false;
    int quit_slot_ = -1;  // the loop's thread's (entered, left, destruction)
    pthread_t loop_thread_ ASYNCFIBER_GUARDED_BY(m_){};
    Mutex handler_m_;
    WatchdogHandler handler_ ASYNCFIBER_GUARDED_BY(handler_m_);
    std::thread thread_;
};

namespace {

thread_local Watchdog* t_watchdog = nullptr;  // the watchdog of the loop this thread runs

void on_watchdog_signal(int sig, siginfo_t* info, void* uctx) {
    const int saved_errno = errno;
    Watchdog* w = t_watchdog;
    int expected = kRequested;
    if (w && w->state.compare_exchange_strong(expected, kFilling, std::memory_order_acquire)) {
        w->answer(uctx);
    } else {
        call_previous_handler(g_prev_urg, sig, info, uctx);  // SIGURG by default: nothing
    }
    errno = saved_errno;
}

// ---- SIGQUIT in debug mode: the watchdogs of the debug loops that are running ----

struct QuitSlot {
    std::atomic<Watchdog*> w{nullptr};
    std::atomic<int> users{0};  // SIGQUIT handlers looking at this slot now
};
constexpr int kQuitSlots = 64;
QuitSlot g_quit_slots[kQuitSlots];
Mutex g_quit_m;
int g_quit_count ASYNCFIBER_GUARDED_BY(g_quit_m) = 0;

void on_sigquit(int, siginfo_t*, void*) {
    const int saved_errno = errno;
    for (QuitSlot& s : g_quit_slots) {
        s.users.fetch_add(1, std::memory_order_acquire);
        if (Watchdog* w = s.w.load(std::memory_order_acquire)) w->quit_requested();
        s.users.fetch_sub(1, std::memory_order_release);
    }
    errno = saved_errno;
}

int quit_register(Watchdog* w) noexcept {
    MutexLock lk(g_quit_m);
    for (int i = 0; i < kQuitSlots; ++i) {
        if (g_quit_slots[i].w.load(std::memory_order_relaxed)) continue;
        g_quit_slots[i].w.store(w, std::memory_order_release);
        if (g_quit_count++ == 0) {
            install_handler(SIGQUIT, &on_sigquit, SA_RESTART, &g_prev_quit);
        }
        return i;
    }
    return -1;  // more debug loops than slots: this one prints no SIGQUIT dump
}

void quit_unregister(int slot) noexcept {
    if (slot < 0) return;
    MutexLock lk(g_quit_m);
    g_quit_slots[slot].w.store(nullptr, std::memory_order_release);
    while (g_quit_slots[slot].users.load(std::memory_order_acquire) > 0) ::sched_yield();
    if (--g_quit_count == 0) ::sigaction(SIGQUIT, &g_prev_quit, nullptr);  // its old action back
}

/// "function at file:line" for each frame, innermost first, starting at the interrupted
/// instruction (the frames of the signal handler itself are left out).
std::vector<std::string> symbolize(void* const* frames, int n, std::uintptr_t pc) {
    int first = 0;
    for (int i = 0; i < n; ++i)
        if (reinterpret_cast<std::uintptr_t>(frames[i]) == pc) {
            first = i;
            break;
        }
    std::vector<std::string> out;
    for (int i = first; i < n; ++i) {
        auto addr = reinterpret_cast<std::uintptr_t>(frames[i]);
        // Above the interrupted frame the addresses are return addresses: the call is the
        // instruction before.
        const std::uintptr_t lookup = i == first && pc ? addr : addr - 1;
        boost::stacktrace::frame f(
            reinterpret_cast<boost::stacktrace::frame::native_frame_ptr_t>(lookup));
        std::string line = f.name();
        if (line.empty()) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%#zx", static_cast<std::size_t>(addr));
            line = buf;
        }
        const std::string file = f.source_file();
        if (!file.empty()) line += " at " + file + ":" + std::to_string(f.source_line());
        out.push_back(std::move(line));
    }
    return out;
}

std::string ms_text(Clock::duration d) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.1f ms",
                  std::chrono::duration_cast<std::chrono::duration<double, std::milli>>(d).count());
    return buf;
}


/// The one thread of the process that symbolizes stack traces and calls the handlers,
/// started with the first report and kept until the process ends. One, because
/// Boost.Stacktrace keeps libbacktrace's state (the program's symbol tables and debug
/// information, tens of MiB, which libbacktrace cannot free) per thread: loaded once here,
/// it serves every loop's watchdog. Symbolizing off the watchdog threads also keeps them
/// sampling meanwhile (the first load takes a few hundred milliseconds).
class Reporter {
public:
    static Reporter& instance() {
        static Reporter* r = new Reporter;  // never destroyed: its thread may run at exit
        return *r;
    }
    void push(PendingReport p) {
        MutexLock lk(m_);
        if (!thread_started_) {
            std::thread([this] { run(); }).detach();
            thread_started_ = true;
        }
        ++pending_[p.from];
        queue_.push_back(std::move(p));
        cv_.notify_all();
    }
    /// Waits until every report of `w` has been delivered.
    void drain(const Watchdog* w) {
        MutexLock lk(m_);
        while (pending_.find(w) != pending_.end()) cv_.wait(lk.native());
    }

private:
    void run() {
        MutexLock lk(m_);
        for (;;) {
            while (queue_.empty()) cv_.wait(lk.native());
            PendingReport p = std::move(queue_.front());
            queue_.pop_front();
            lk.unlock();
            deliver(p);
            lk.lock();
            if (--pending_[p.from] == 0) pending_.erase(p.from);
            cv_.notify_all();
        }
    }
    static void deliver(PendingReport& p) noexcept;

    Mutex m_;
    std::condition_variable cv_;
    std::deque<PendingReport> queue_ ASYNCFIBER_GUARDED_BY(m_);
    std::map<const Watchdog*, int> pending_ ASYNCFIBER_GUARDED_BY(m_);
    bool thread_started_ ASYNCFIBER_GUARDED_BY(m_) = false;
};

void Reporter::deliver(PendingReport& p) noexcept {
    WatchdogReport& r = p.report;
    try {
        if (r.kind == WatchdogReport::Kind::running) {
            try {
                r.stack = symbolize(p.frames.data(), static_cast<int>(p.frames.size()), p.pc);
            } catch (...) {  // no memory: the report goes without frames
            }
            r.message = "asyncfiber: watchdog: " + p.who + " has been running for " +
                        ms_text(r.elapsed) + " without suspending (threshold " +
                        ms_text(r.threshold) + "): the loop is blocked. ";
            if (!p.answered) {
                r.message +=
                    "The loop's thread did not answer the watchdog's signal (SIGURG blocked "
                    "or handled elsewhere): no stack trace.\n";
            } else {
                r.message += "Stack of the loop's thread:\n";
                for (std::size_t i = 0; i < r.stack.size(); ++i)
                    r.message += "  #" + std::to_string(i) + "  " + r.stack[i] + "\n";
            }
        }
        if (p.handler) {
            try {
                (*p.handler)(r);
                return;
            } catch (...) {
                std::fputs("asyncfiber: the watchdog handler threw; falling back to stderr\n",
                           stderr);
            }
        }
        std::fputs(r.message.c_str(), stderr);
    } catch (...) {  // no memory for the message
    }
}

}  // namespace

Watchdog::Watchdog(LoopImpl* L) : L_(L) {
    std::call_once(g_urg_installed, install_signal_handler);
    ::sem_init(&wake_, 0, 0);
    ::sem_init(&answered_, 0, 0);
    g_threads_running.fetch_add(1, std::memory_order_relaxed);
    try {
        thread_ = std::thread([this] {
            run();
            g_threads_running.fetch_sub(1, std::memory_order_release);
        });
    } catch (...) {
        g_threads_running.fetch_sub(1, std::memory_order_relaxed);
        ::sem_destroy(&wake_);
        ::sem_destroy(&answered_);
        throw;
    }
}

int watchdog_threads_running() noexcept {
    return g_threads_running.load(std::memory_order_acquire);
}

Watchdog::~Watchdog() {
    {
        MutexLock lk(m_);
        stop_ = true;
    }
    ::sem_post(&wake_);
    thread_.join();
    Reporter::instance().drain(this);  // its reports are out before the loop goes
    if (quit_slot_ >= 0) quit_unregister(quit_slot_);
    if (t_watchdog == this) t_watchdog = nullptr;
    ::sem_destroy(&wake_);
    ::sem_destroy(&answered_);
}

void Watchdog::entered(bool debug) noexcept {
    {
        MutexLock lk(m_);
        entered_ = true;
        loop_thread_ = ::pthread_self();
    }
    t_watchdog = this;
    set_quit_service(debug);
}

void Watchdog::left() noexcept {
    set_quit_service(false);
    // Waits for an exchange in flight: its signal is answered meanwhile (t_watchdog is still
    // set), and none is sent afterwards, so this thread may end once it has left.
    {
        MutexLock lk(m_);
        entered_ = false;
    }
    t_watchdog = nullptr;
}

void Watchdog::set_quit_service(bool on) noexcept {
    if (on && quit_slot_ < 0)
        quit_slot_ = quit_register(this);
    else if (!on && quit_slot_ >= 0) {
        quit_unregister(quit_slot_);
        quit_slot_ = -1;
    }
}

void Watchdog::answer(void* uctx) noexcept {
    if (ask_ == Ask::dump) {
        if (dump_pending_.exchange(false)) write_task_dump_in_signal(L_);
    } else {
        same_step_ = L_->step.load() == mark_;
        if (same_step_) {
            const TaskBase* t = L_->running;  // null: a callback
            task_id_ = t ? t->id : 0;
            name_len_ = 0;
            if (t) {
                const std::string& name = t->given_name();
                name_len_ = std::min(name.size(), kNameBytes);
                std::memcpy(name_, name.data(), name_len_);
            }
            pc_ = interrupted_pc(uctx);
            nframes_ = ::backtrace(frames_, kMaxFrames);
        }
    }
    state.store(kFilled, std::memory_order_release);
    ::sem_post(&answered_);
}

bool Watchdog::ask(Ask what, std::uint64_t mark) {
    ask_ = what;
    mark_ = mark;
    state.store(kRequested, std::memory_order_release);
    if (::pthread_kill(loop_thread_, kSignal) != 0) {
        state.store(kIdle, std::memory_order_relaxed);
        return false;
    }
    if (!sem_wait_for(&answered_, kAnswerTimeout)) {
        int expected = kRequested;
        if (state.compare_exchange_strong(expected, kIdle)) return false;  // never answered
        sem_wait_retry(&answered_);  // the handler is answering right now
    }
    (void)state.load(std::memory_order_acquire);
    state.store(kIdle, std::memory_order_relaxed);
    return true;
}

void Watchdog::deliver(PendingReport p) {
    p.from = this;
    {
        MutexLock lk(handler_m_);
        p.handler = handler_;
    }
    Reporter::instance().push(std::move(p));
}

void Watchdog::run() {
    std::uint64_t last = L_->step.load();
    Clock::time_point first_seen = Clock::now();
    bool reported = false;          // the step `last` was reported as still running
    WatchdogReport running_report;  // kept for its end
    bool dump_waiting = false;
    Clock::time_point dump_since;
    for (;;) {
        const Clock::duration threshold = this->threshold();
        // Sampling: an eighth of the threshold; finer while a reported step or a SIGQUIT
        // dump is waited for; without a threshold only SIGQUIT and stop wake the thread.
        Clock::duration period = Clock::duration::max();
        if (threshold > Clock::duration::zero())
            period = std::min<Clock::duration>(
                std::max<Clock::duration>(threshold / 8, std::chrono::milliseconds(1)),
                std::chrono::seconds(1));
        if (reported) period = std::min<Clock::duration>(period, std::chrono::milliseconds(10));
        if (dump_waiting) period = std::min<Clock::duration>(period, std::chrono::milliseconds(5));
        if (period == Clock::duration::max())
            sem_wait_retry(&wake_);
        else
            sem_wait_for(&wake_, period);

        MutexLock lk(m_);
        const Clock::time_point now = Clock::now();
        if (stop_) {
            // A reported step that has ended meanwhile still gets its last line.
            if (reported && L_->step.load() != last) {
                lk.unlock();
                deliver(ended_report(running_report, now - first_seen));
            }
            return;
        }

        // SIGQUIT: the dump is printed by the loop at its next safe point (posted to it);
        // if the loop is still inside a step after a while, from the signal handler.
        if (dump_pending_.load(std::memory_order_relaxed)) {
            if (!dump_waiting) {
                dump_waiting = true;
                dump_since = now;
                LoopImpl* L = L_;
                try {
                    L->io->post([L] {
                        if (Watchdog* w = L->watch.thread.get()) w->serve_dump_at_safe_point();
                    });
                } catch (...) {  // no memory: the signal handler prints it after the grace
                }
            } else if (now - dump_since >= kDumpGrace && entered_ &&
                       StepMark::in_step(L_->step.load())) {
                ask(Ask::dump, 0);
            }
        } else {
            dump_waiting = false;
        }

        const std::uint64_t mark = L_->step.load();
        if (mark != last) {
            if (reported) {
                lk.unlock();
                deliver(ended_report(running_report, now - first_seen));
                lk.lock();
            }
            last = mark;
            first_seen = now;
            reported = false;
            continue;
        }
        if (reported || threshold <= Clock::duration::zero() || !StepMark::in_step(mark) ||
            !entered_ || now - first_seen < threshold)
            continue;

        // A step has run past the threshold: ask the loop's thread what it is doing.
        const bool answered = ask(Ask::trace, mark);
        if (answered && !same_step_) continue;  // it ended meanwhile: nothing to report
        PendingReport p;
        WatchdogReport& r = p.report;
        r.kind = WatchdogReport::Kind::running;
        r.elapsed = Clock::now() - first_seen;
        r.threshold = threshold;
        p.answered = answered;
        if (!answered) {
            p.who = "a task step or callback";
        } else if (task_id_) {
            r.task_id = task_id_;
            r.task_name = TaskName(task_id_, name_, name_len_).str();
            p.who = "task '" + r.task_name + "' (id " + std::to_string(r.task_id) + ")";
            p.frames.assign(frames_, frames_ + nframes_);
        } else {
            p.who = "a loop callback";
            p.frames.assign(frames_, frames_ + nframes_);
        }
        p.pc = pc_;
        lk.unlock();
        running_report = p.report;
        running_who = answered ? p.who : "the blocked step";
        reported = true;
        deliver(std::move(p));
    }
}

PendingReport Watchdog::ended_report(const WatchdogReport& running, Clock::duration elapsed) const {
    PendingReport p;
    p.report = running;
    p.report.kind = WatchdogReport::Kind::ended;
    p.report.elapsed = elapsed;
    p.report.message = "asyncfiber: watchdog: " + running_who + ": the step ended after " +
                       ms_text(elapsed) + "\n";
    return p;
}

void WatchdogDeleter::operator()(Watchdog* w) const noexcept { delete w; }

Clock::duration watchdog_threshold(const LoopImpl* L) noexcept {
    if (!L->watch.set) return L->debug ? L->slow_step : Clock::duration::zero();
    return L->watch.setting;
}

void watchdog_update(LoopImpl* L) {
    const Clock::duration threshold = watchdog_threshold(L);
    const bool needed = !L->closed && (threshold > Clock::duration::zero() || L->debug);
    if (!needed) {
        watchdog_stop(L);
        return;
    }
    if (!L->watch.thread) {
        L->watch.thread.reset(new Watchdog(L));
        L->watch.thread->set_handler(L->watch.handler);
        if (L->entered && L->running_on.load() == std::this_thread::get_id())
            L->watch.thread->entered(L->debug);
    } else if (L->entered && L->running_on.load() == std::this_thread::get_id()) {
        L->watch.thread->set_quit_service(L->debug);
    }
    L->watch.thread->set_threshold(threshold);
}

void watchdog_stop(LoopImpl* L) noexcept {
    std::unique_ptr<Watchdog, WatchdogDeleter> w = std::move(L->watch.thread);
    w.reset();  // joins; the loop no longer finds it meanwhile
}

void watchdog_loop_entered(LoopImpl* L) noexcept {
    if (!L->watch.thread) {
        try {
            watchdog_update(L);  // debug mode or ASYNCFIBER_WATCHDOG_MS on a loop never run
        } catch (...) {
            L->report(ExceptionContext{
                "the watchdog thread could not be started", std::current_exception(), {}});
        }
        if (L->watch.thread) return;  // update entered it
    }
    if (L->watch.thread) L->watch.thread->entered(L->debug);
}

void watchdog_loop_left(LoopImpl* L) noexcept {
    if (L->watch.thread) L->watch.thread->left();
}

void watchdog_set_handler(LoopImpl* L, Callback<void(const WatchdogReport&)> fn) {
    L->watch.handler =
        fn ? std::make_shared<const Callback<void(const WatchdogReport&)>>(std::move(fn)) : nullptr;
    if (L->watch.thread) L->watch.thread->set_handler(L->watch.handler);
}

void watchdog_read_environment(LoopImpl* L) {
    const char* env = std::getenv("ASYNCFIBER_WATCHDOG_MS");
    if (!env || !*env) return;
    char* end = nullptr;
    errno = 0;
    const long long ms = std::strtoll(env, &end, 10);
    if (*end != '\0' || errno == ERANGE || ms < 0) {
        std::fprintf(stderr,
                     "asyncfiber: ASYNCFIBER_WATCHDOG_MS=%s is not a number of milliseconds "
                     "(0 or more); ignored\n",
                     env);
        return;
    }
    // Saturates rather than overflows (a threshold of centuries is "never").
    const long long max_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::duration::max()).count();
    L->watch.setting = std::chrono::milliseconds(std::min(ms, max_ms));
    L->watch.set = true;
}

}  // namespace detail
}  // namespace asyncfiber
