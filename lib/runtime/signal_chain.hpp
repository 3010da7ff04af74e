// Internal: handing a signal on to the handler that was installed before ours (the overflow
// guard's SIGSEGV/SIGBUS, the watchdog's SIGURG), so that installing ours takes nothing away.
#pragma once

#include <csignal>
#include <cstring>

namespace asyncfiber {
namespace detail {

/// Installs `handler` for `sig` with `flags` besides SA_SIGINFO and SA_ONSTACK (the handler
/// runs on the thread's alternate signal stack: the overflowed or interrupted one may have no
/// room), and keeps the action it replaces in `prev` for call_previous_handler.
inline void install_handler(int sig, void (*handler)(int, siginfo_t*, void*), int flags,
                            struct sigaction* prev) noexcept {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | flags;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, prev);
}

/// Calls `prev` for `sig` if it is a function; false if it is SIG_DFL or SIG_IGN (then the
/// caller decides what the default means for its signal).
inline bool call_previous_handler(const struct sigaction& prev, int sig, siginfo_t* info,
                                  void* uctx) {
    if (prev.sa_flags & SA_SIGINFO) {
        if (!prev.sa_sigaction) return false;
        prev.sa_sigaction(sig, info, uctx);
        return true;
    }
    if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) return false;
    prev.sa_handler(sig);
    return true;
}

}  // namespace detail
}  // namespace asyncfiber
