// What a mutex guards, in a form clang checks (-Wthread-safety, on in the project's clang
// builds): a member or global marked ASYNCFIBER_GUARDED_BY(m) may only be touched while `m`
// is held, and a function marked ASYNCFIBER_REQUIRES(m) only called so. Other compilers see
// plain code.
//
// libstdc++'s std::mutex carries no such attributes, so the guarded state's mutex is a
// detail::Mutex (a std::mutex that says so) and is held through a detail::MutexLock (a
// std::unique_lock that says so; native() gives the unique_lock for a condition variable,
// whose wait releases and retakes the mutex within the lock's scope).
#pragma once

#include <mutex>

#if defined(__clang__)
#define ASYNCFIBER_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ASYNCFIBER_THREAD_ANNOTATION(x)
#endif

#define ASYNCFIBER_CAPABILITY(name) ASYNCFIBER_THREAD_ANNOTATION(capability(name))
#define ASYNCFIBER_SCOPED_CAPABILITY ASYNCFIBER_THREAD_ANNOTATION(scoped_lockable)
#define ASYNCFIBER_GUARDED_BY(m) ASYNCFIBER_THREAD_ANNOTATION(guarded_by(m))
#define ASYNCFIBER_PT_GUARDED_BY(m) ASYNCFIBER_THREAD_ANNOTATION(pt_guarded_by(m))
#define ASYNCFIBER_REQUIRES(...) ASYNCFIBER_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ASYNCFIBER_ACQUIRE(...) ASYNCFIBER_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ASYNCFIBER_RELEASE(...) ASYNCFIBER_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define ASYNCFIBER_EXCLUDES(...) ASYNCFIBER_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
/// For the few functions whose locking the analysis cannot follow (say why beside each).
#define ASYNCFIBER_NO_THREAD_SAFETY_ANALYSIS ASYNCFIBER_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace asyncfiber {
namespace detail {

class ASYNCFIBER_CAPABILITY("mutex") Mutex {
public:
    void lock() ASYNCFIBER_ACQUIRE() { m_.lock(); }
    void unlock() ASYNCFIBER_RELEASE() { m_.unlock(); }
    std::mutex& native() noexcept { return m_; }

private:
    std::mutex m_;
};

class ASYNCFIBER_SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& m) ASYNCFIBER_ACQUIRE(m) : lock_(m.native()) {}
    ~MutexLock() ASYNCFIBER_RELEASE() {}
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

    void unlock() ASYNCFIBER_RELEASE() { lock_.unlock(); }
    void lock() ASYNCFIBER_ACQUIRE() { lock_.lock(); }
    /// For std::condition_variable::wait and the like.
    std::unique_lock<std::mutex>& native() noexcept { return lock_; }

private:
    std::unique_lock<std::mutex> lock_;
};

}  // namespace detail
}  // namespace asyncfiber
