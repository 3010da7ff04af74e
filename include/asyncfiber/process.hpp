// asyncfiber/process.hpp - child processes with piped standard streams, like asyncio's
// create_subprocess_exec.
//
//   af::ProcessOptions o;
//   o.stdout_mode = af::Stdio::pipe;
//   af::Process p = af::create_subprocess_exec({"ls", "-l"}, o);
//   std::string listing = p.stdout_pipe().read();
//   int rc = p.wait();
//
// The child is reaped by the loop as soon as it exits (through a pidfd, or by polling
// waitpid(WNOHANG) where pidfds are missing), never by blocking the loop; a child still
// running when the loop closes is reaped by a detached thread, so none is left a zombie.
#pragma once

#include <asyncfiber/detail/access.hpp>
#include <asyncfiber/detail/intrusive_ptr.hpp>
#include <asyncfiber/detail/state_share.hpp>
#include <asyncfiber/net.hpp>

#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace asyncfiber {

namespace detail {
struct ProcessState;
}  // namespace detail

/// What a child's standard stream is connected to.
enum class Stdio {
    inherit,   ///< the parent's
    pipe,      ///< a pipe: stdin_pipe() / stdout_pipe() / stderr_pipe()
    devnull,   ///< /dev/null
    to_stdout  ///< stderr only: wherever stdout goes (asyncio's STDOUT)
};

struct ProcessOptions {
    Stdio stdin_mode = Stdio::inherit;
    Stdio stdout_mode = Stdio::inherit;
    Stdio stderr_mode = Stdio::inherit;
    std::string cwd;                           ///< empty: the parent's
    bool replace_env = false;                  ///< true: `env` is the whole environment
    std::vector<std::string> env;              ///< "NAME=value" entries
    std::size_t limit = default_stream_limit;  ///< buffer limit of the output pipes
    /// Closes every descriptor but 0, 1, 2 (and pass_fds) in the child, also those opened
    /// without close-on-exec (asyncio's and subprocess' default close_fds=True). False: the
    /// child inherits whatever has no close-on-exec flag.
    bool close_fds = true;
    /// Descriptors the child keeps at the same numbers, close-on-exec or not (subprocess'
    /// pass_fds). Needs close_fds; each must be open (std::system_error, EBADF, otherwise).
    std::vector<int> pass_fds;
};

/// A child process (asyncio.subprocess.Process). A cheap handle: copies share it.
class Process {
public:
    Process() noexcept = default;

    pid_t pid() const;
    /// The parent's ends of the child's standard streams started as Stdio::pipe; each
    /// throws InvalidStateError if that stream is not a pipe.
    StreamWriter stdin_pipe() const;
    StreamReader stdout_pipe() const;
    StreamReader stderr_pipe() const;

    /// Waits for the process to exit; returns returncode().
    int wait();
    /// Sends `input` to stdin (if piped) and closes it, reads stdout and stderr (if piped) to
    /// EOF, waits for the exit. Returns {out, err}. Cancelling the caller cancels all of it.
    std::pair<std::string, std::string> communicate(const std::string& input = std::string());
    /// True once the process has exited and was reaped.
    bool has_exited() const;
    /// The exit status, or -N if signal N ended it. Throws InvalidStateError while it runs.
    int returncode() const;
    /// Sends a signal; does nothing once the process has been reaped (its pid may be reused).
    void send_signal(int sig);
    void terminate();  ///< SIGTERM
    void kill();       ///< SIGKILL

    explicit operator bool() const noexcept { return static_cast<bool>(s_); }

private:
    friend struct detail::Access;
    explicit Process(detail::IntrusivePtr<detail::StateShare<detail::ProcessState>> s) noexcept
        : s_(std::move(s)) {}
    detail::ProcessState& state() const;
    detail::IntrusivePtr<detail::StateShare<detail::ProcessState>> s_;
};

/// Starts argv[0] (looked up in PATH if it has no '/') with arguments argv[1...]. Throws
/// std::system_error if it cannot be started (e.g. ENOENT for an unknown program).
Process create_subprocess_exec(const std::vector<std::string>& argv,
                               const ProcessOptions& options = ProcessOptions());

}  // namespace asyncfiber
