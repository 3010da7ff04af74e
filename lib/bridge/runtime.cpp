// af::Runtime (asyncfiber/runtime.hpp): N threads, each running a loop of its own until
// stop(), and run()'s wait for every loop's main task.
//
// Why the loops run run_forever() rather than a main task each: spawn_on must be able to
// start a task on a loop at any time, also when no main task runs there (no run() at all).
// stop() is the only way out; the thread then closes its loop itself, which cancels and
// finishes the tasks on their own stacks, and so fails the futures still pending.
#include "runtime/io_driver.hpp"
#include "runtime/loop_impl.hpp"

#include <asyncfiber/runtime.hpp>

#include <condition_variable>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace asyncfiber {

namespace detail {
void RemoteTask::request_cancel(const std::shared_ptr<RemoteTask>& remote) {
    remote->cancel_requested.store(true);
    try {
        remote->loop->call_soon_threadsafe([remote] {
            if (TaskBase* t = remote->task) {
                t->add_ref();
                detail::Access::adopt<TaskRef>(t).cancel();
            }
        });
    } catch (const RuntimeError&) {
        // The loop is closed: its tasks have ended, and with them the future.
    }
}
}  // namespace detail

Runtime::Runtime(std::size_t loops) {
    if (loops == 0) throw std::invalid_argument("asyncfiber: a Runtime needs at least one loop");
    loops_.reserve(loops);
    for (std::size_t i = 0; i < loops; ++i) loops_.emplace_back(new Loop);
    threads_.reserve(loops);
    try {
        for (std::size_t i = 0; i < loops; ++i)
            threads_.emplace_back([this, i] { thread_main(i); });
    } catch (...) {
        stop();  // the threads that did start
        throw;
    }
}

Runtime::~Runtime() {
    if (detail::current_loop()) {
        // Joining from one of its threads would wait for itself; on another loop's thread it
        // would block that loop. Said loudly: the program is wrong.
        std::fputs(
            "asyncfiber: an af::Runtime was destroyed on a thread that runs a loop; "
            "destroy it on a plain thread\n",
            stderr);
    }
    stop();
    join_all();
}

Loop& Runtime::loop(std::size_t i) {
    check_index(i);
    return *loops_[i];
}

void Runtime::check_index(std::size_t i) const {
    if (i >= loops_.size())
        throw std::out_of_range("asyncfiber: Runtime has " + std::to_string(loops_.size()) +
                                " loops; there is no loop " + std::to_string(i));
}

bool Runtime::post(std::size_t i, std::function<void()> start) {
    detail::MutexLock lk(m_);
    if (stopped_) return false;
    try {
        loops_[i]->call_soon_threadsafe(std::move(start));
    } catch (const RuntimeError&) {
        return false;  // closed
    }
    return true;
}

void Runtime::thread_main(std::size_t i) noexcept {
    Loop& loop = *loops_[i];
    try {
        // A loop stopped by its own code (loop.stop()) goes on: only Runtime::stop ends it.
        while (!stopping_->load()) loop.run_forever();
        loop.close();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "asyncfiber: loop %zu of an af::Runtime failed: %s\n", i, e.what());
    } catch (...) {
        std::fprintf(stderr, "asyncfiber: loop %zu of an af::Runtime failed\n", i);
    }
}

void Runtime::stop() {
    {
        detail::MutexLock lk(m_);
        if (!stopped_) {
            stopped_ = true;
            stopping_->store(true);
            for (auto& l : loops_) {
                Loop* target = l.get();
                try {
                    target->call_soon_threadsafe([target] { target->stop(); });
                } catch (const RuntimeError&) {
                    // Closed already (its thread failed): nothing to stop.
                }
            }
        }
    }
    if (!detail::current_loop()) join_all();
}

void Runtime::join_all() {
    for (auto& t : threads_)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

namespace {
/// What run() shares with the done callbacks of the main tasks and the SIGINT watch.
struct RunState {
    detail::Mutex m;
    std::condition_variable cv;
    std::vector<std::size_t> finished
        ASYNCFIBER_GUARDED_BY(m);  // indexes, in the order the mains ended
    // Filled under m before any done callback or the SIGINT watch can read it, then only read.
    std::vector<Future<void>> mains;
    bool interrupted ASYNCFIBER_GUARDED_BY(m) = false;

    void cancel_all() {
        std::vector<Future<void>> all;
        {
            detail::MutexLock lk(m);
            all = mains;
        }
        for (auto& f : all) f.cancel();
    }
};
}  // namespace

void Runtime::run_mains(const std::function<Future<void>(std::size_t)>& spawn_main) {
    if (detail::current_loop())
        throw RuntimeError(
            "asyncfiber: Runtime::run called on a thread that runs a loop; it "
            "blocks until every loop's main task has ended: call it on a plain "
            "thread (from a task, spawn_on and af::await the futures)");
    auto st = std::make_shared<RunState>();
    // SIGINT cancels every main task; its watch lives on loop 0 (any thread may receive the
    // signal, Asio hands it to the io_context that watches it).
    Loop* first = loops_[0].get();
    auto watching = spawn_on(0, [st, first] {
        detail::Access::impl(*first)->io->watch_sigint([st] {
            {
                detail::MutexLock lk(st->m);
                st->interrupted = true;
            }
            st->cancel_all();
        });
    });
    watching.get();  // CancelledError when stopped already
    struct Unwatch {
        Runtime* rt;
        Loop* first;
        ~Unwatch() {
            try {
                rt->spawn_on(0, [this] {
                      detail::Access::impl(*first)->io->unwatch_sigint();
                  }).get();
            } catch (...) {
                // Stopped meanwhile: the loop's close ends the watch with it.
            }
        }
    } unwatch{this, first};

    {
        detail::MutexLock lk(st->m);
        for (std::size_t i = 0; i < size(); ++i) st->mains.push_back(spawn_main(i));
    }
    for (std::size_t i = 0; i < size(); ++i) {
        st->mains[i].add_done_callback([st, i] {
            detail::MutexLock lk(st->m);
            st->finished.push_back(i);
            st->cv.notify_all();
        });
    }
    std::exception_ptr first_error;
    for (std::size_t seen = 0; seen < size(); ++seen) {
        std::size_t i;
        {
            detail::MutexLock lk(st->m);
            while (st->finished.size() <= seen) st->cv.wait(lk.native());
            i = st->finished[seen];
        }
        try {
            st->mains[i].get();
        } catch (...) {
            if (!first_error) {
                first_error = std::current_exception();
                st->cancel_all();
            }
        }
    }
    bool interrupted;
    {
        detail::MutexLock lk(st->m);
        interrupted = st->interrupted;
    }
    if (interrupted) throw KeyboardInterrupt();
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace asyncfiber
