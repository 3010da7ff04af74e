// The thread pool behind af::to_thread: one per loop, created by the first to_thread, bounded,
// threads started on demand, shut down and joined by Loop::close (after its queued jobs ran,
// as asyncio's shutdown_default_executor waits for them).
//
// The pool is kept in a table beside the loop rather than in LoopImpl, so that the loop does
// not pay for threads it never uses.
#include "runtime/loop_impl.hpp"
#include "runtime/task_locals.hpp"

#include <asyncfiber/bridge.hpp>
#include <asyncfiber/detail/thread_annotations.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asyncfiber {
namespace detail {

namespace {

std::size_t initial_default_size() noexcept {
    std::size_t hw = std::thread::hardware_concurrency();
    if (hw == 0) hw = 1;
    return std::min<std::size_t>(32, hw + 4);
}

std::atomic<std::size_t> g_default_size{initial_default_size()};

class ThreadPool;

}  // namespace

// A queued job: in its pool's queue (which holds it through `queued`) until a thread takes
// it or the task that submitted it withdraws it.
class PoolJob : public ListNode {
public:
    explicit PoolJob(std::function<void()> f) : fn(std::move(f)) {}
    std::function<void()> fn;
    ThreadPool* pool = nullptr;
    std::shared_ptr<PoolJob> queued;  // the pool's reference while queued
};

namespace {

class ThreadPool {
public:
    explicit ThreadPool(std::size_t max) : max_(std::max<std::size_t>(1, max)) {}
    ~ThreadPool() {
        shutdown();
        // Jobs no thread could take (every start of a thread failed) release themselves.
        MutexLock lk(m_);
        while (ListNode* n = jobs_.pop_front()) static_cast<PoolJob*>(n)->queued.reset();
    }
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    std::shared_ptr<PoolJob> submit(std::function<void()> fn) {
        auto job = std::make_shared<PoolJob>(std::move(fn));
        job->pool = this;
        MutexLock lk(m_);
        if (stopping_) throw RuntimeError("asyncfiber: to_thread on a loop being closed");
        enqueue(job);
        if (idle_ == 0 && live_ < max_) {
            ++live_;
            try {
                threads_.emplace_back([this] { work(); });
            } catch (...) {
                --live_;
                if (live_ == 0) {  // nobody could ever run it
                    job->unlink();
                    job->queued.reset();
                    throw;
                }
            }
        } else {
            cv_.notify_one();
        }
        return job;
    }

    /// Takes `job` out of the queue if no thread has started it; its function is then
    /// destroyed (here, outside the lock) and never runs.
    bool withdraw(PoolJob& job) {
        std::shared_ptr<PoolJob> taken;
        {
            MutexLock lk(m_);
            if (!job.queued) return false;
            job.unlink();
            taken = std::move(job.queued);
        }
        taken->fn = nullptr;
        return true;
    }

    void set_max(std::size_t n) {
        MutexLock lk(m_);
        max_ = std::max<std::size_t>(1, n);
        cv_.notify_all();  // surplus idle threads notice and end
    }

    void shutdown() {
        std::vector<std::thread> threads;
        {
            MutexLock lk(m_);
            stopping_ = true;
            cv_.notify_all();
            threads.swap(threads_);
        }
        for (auto& t : threads) t.join();
    }

private:
    void work() {
        MutexLock lk(m_);
        for (;;) {
            if (jobs_.empty()) {
                if (stopping_ || live_ > max_) break;
                ++idle_;
                while (jobs_.empty() && !stopping_ && live_ <= max_) cv_.wait(lk.native());
                --idle_;
                continue;
            }
            std::shared_ptr<PoolJob> job = dequeue();
            std::function<void()> fn = std::move(job->fn);
            job.reset();
            lk.unlock();
            try {
                CallbackContextScope own_context;  // what fn sets stays with this job
                fn();
            } catch (...) {
                // Jobs carry their own exceptions back (to_thread catches everything).
            }
            fn = nullptr;  // what it captured is released before the next wait
            lk.lock();
        }
        --live_;
    }

    void enqueue(const std::shared_ptr<PoolJob>& job) ASYNCFIBER_REQUIRES(m_) {
        job->queued = job;
        jobs_.push_back(job.get());
    }
    std::shared_ptr<PoolJob> dequeue() ASYNCFIBER_REQUIRES(m_) {
        auto* job = static_cast<PoolJob*>(jobs_.pop_front());
        return std::move(job->queued);
    }

    Mutex m_;
    std::condition_variable cv_;
    List jobs_ ASYNCFIBER_GUARDED_BY(m_);  // PoolJob nodes, oldest first
    std::vector<std::thread> threads_ ASYNCFIBER_GUARDED_BY(m_);
    std::size_t max_ ASYNCFIBER_GUARDED_BY(m_);
    std::size_t live_ ASYNCFIBER_GUARDED_BY(m_) = 0;
    std::size_t idle_ ASYNCFIBER_GUARDED_BY(m_) = 0;
    bool stopping_ ASYNCFIBER_GUARDED_BY(m_) = false;
};

// The pools of loops, keyed by loop. Touched only from loop threads (to_thread, close).
Mutex g_pools_m;
std::map<LoopImpl*, std::shared_ptr<ThreadPool>> g_pools ASYNCFIBER_GUARDED_BY(g_pools_m);

std::shared_ptr<ThreadPool> pool_of(LoopImpl* L) {
    MutexLock lk(g_pools_m);
    auto it = g_pools.find(L);
    if (it != g_pools.end()) return it->second;
    if (L->closed) throw RuntimeError("asyncfiber: the loop is closed");
    // Cheap: threads start only when jobs come.
    auto pool = std::make_shared<ThreadPool>(g_default_size.load());
    g_pools.emplace(L, pool);
    L->close_hooks.push_back([L] {
        std::shared_ptr<ThreadPool> p;
        {
            MutexLock g(g_pools_m);
            auto i = g_pools.find(L);
            if (i != g_pools.end()) {
                p = std::move(i->second);
                g_pools.erase(i);
            }
        }
        if (p) p->shutdown();
    });
    return pool;
}

}  // namespace

std::shared_ptr<PoolJob> submit_to_pool(std::function<void()> job) {
    LoopImpl* L = loop_checked("af::to_thread");
    // asyncio's to_thread: fn runs in a copy of the calling task's context.
    return pool_of(L)->submit(with_current_context(std::move(job)));
}

// The pool outlives every task of its loop (Loop::close shuts it down once they are done),
// and only the task that submitted a job withdraws it.
bool withdraw_or_wait_for(void* job) {
    auto* j = static_cast<PoolJob*>(job);
    return !j->pool->withdraw(*j);
}

bool withdraw_or_abandon(void* job) {
    auto* j = static_cast<PoolJob*>(job);
    j->pool->withdraw(*j);
    return false;
}

}  // namespace detail

std::size_t default_executor_size() noexcept { return detail::g_default_size.load(); }

void set_default_executor_size(std::size_t threads) {
    if (threads == 0)
        throw std::invalid_argument("asyncfiber: an executor needs at least one thread");
    detail::g_default_size.store(threads);
}

void set_executor_size(Loop& loop, std::size_t threads) {
    if (threads == 0)
        throw std::invalid_argument("asyncfiber: an executor needs at least one thread");
    detail::pool_of(detail::Access::impl(loop))->set_max(threads);
}

}  // namespace asyncfiber
