// af::create_subprocess_exec and af::Process: fork/exec with pipes, reaping on the loop.
//
// Reaping never blocks the loop: a pidfd (Linux 5.3+) becomes readable when the child exits
// and an Asio wait on it runs waitpid(WNOHANG); without pidfds the loop polls waitpid every
// 20 ms. A child still running when the loop closes is handed to a detached thread that
// waits for it, so no zombie is left behind either way.
#include "runtime/state_share.hpp"
#include "stream_core.hpp"

#include <asyncfiber/gather.hpp>
#include <asyncfiber/process.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace asyncfiber {
namespace detail {

namespace {
constexpr auto kPollEvery = std::chrono::milliseconds(20);

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

// PATH lookup happens in the parent: the child may only make async-signal-safe calls.
std::string find_program(const std::string& name, const std::vector<std::string>& env,
                         bool replace_env) {
    if (name.find('/') != std::string::npos) return name;
    std::string path;
    bool have = false;
    for (const auto& e : env)
        if (e.compare(0, 5, "PATH=") == 0) {
            path = e.substr(5);
            have = true;
        }
    if (!have && !replace_env) {
        const char* p = std::getenv("PATH");
        path = p ? p : "/usr/local/bin:/usr/bin:/bin";
    } else if (!have) {
        path = "/usr/local/bin:/usr/bin:/bin";
    }
    std::size_t start = 0;
    for (;;) {
        std::size_t end = path.find(':', start);
        std::string dir =
            path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (dir.empty()) dir = ".";
        std::string full = dir + "/" + name;
        struct stat st;
        if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            ::access(full.c_str(), X_OK) == 0)
            return full;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    throw_errno(ENOENT, "create_subprocess_exec: '" + name + "' not found in PATH");
}

struct Fd {
    int fd = -1;
    Fd() = default;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    void reset() noexcept {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    int release() noexcept {
        int f = fd;
        fd = -1;
        return f;
    }
};

// Every descriptor opened for the child lies above 2, even when the parent closed its
// standard streams and the kernel hands out 0, 1 or 2: the child's dup2 onto its own number
// would change nothing (the stream would stay close-on-exec and vanish at exec), and a
// standard stream set up in the child would overwrite the next stream's source or the error
// pipe.
void move_above_stdio(Fd& f) {
    if (f.fd > 2) return;
    int moved = ::fcntl(f.fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC)");
    f.reset();
    f.fd = moved;
}

void make_pipe(Fd& r, Fd& w) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw_errno(errno, "pipe2");
    r.fd = p[0];
    w.fd = p[1];
    move_above_stdio(r);
    move_above_stdio(w);
}

// What the child reports through its error pipe when it cannot exec: the step that failed
// and its errno (one write of 8 bytes, atomic on a pipe).
enum class ChildStep : int { stdio, close_fds, cwd, exec };
struct ChildFailure {
    ChildStep step;
    int err;
};

// ---- in the child, between fork and exec: async-signal-safe calls only ----

// Closes every descriptor from `lo` up to `hi` (inclusive) by number; the last resort.
void close_each(unsigned lo, unsigned hi) noexcept {
    for (unsigned fd = lo; fd <= hi && fd < static_cast<unsigned>(INT32_MAX); ++fd)
        ::close(static_cast<int>(fd));
}

bool kept(int fd, const int* keep, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if (keep[i] == fd) return true;
    return false;
}

// Closes every descriptor >= 3 except the `n` in `keep` (sorted, each >= 3): close_range()
// over the gaps where the kernel has it (5.9+); else the entries of /proc/self/fd, read with
// getdents64 (opendir would allocate); else every number below the descriptor limit.
bool close_fds_except(const int* keep, std::size_t n, unsigned fd_limit) noexcept {
#ifdef SYS_close_range
    {
        unsigned lo = 3;
        bool ok = true;
        for (std::size_t i = 0; i <= n && ok; ++i) {
            unsigned hi = i < n ? static_cast<unsigned>(keep[i]) - 1 : ~0U;
            if (lo <= hi) ok = ::syscall(SYS_close_range, lo, hi, 0) == 0;
            if (i < n) lo = static_cast<unsigned>(keep[i]) + 1;
        }
        if (ok) return true;
        if (errno != ENOSYS && errno != EINVAL) return false;
    }
#endif
    int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        alignas(8) char buf[1024];
        for (;;) {
            long got = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
            if (got <= 0) break;
            for (long off = 0; off < got;) {
                // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name
                unsigned short reclen;
                std::memcpy(&reclen, buf + off + 16, sizeof reclen);
                const char* name = buf + off + 19;
                int fd = 0;
                bool digits = *name != '\0';
                for (const char* c = name; *c; ++c) {
                    if (*c < '0' || *c > '9')
                        digits = false;
                    else
                        fd = fd * 10 + (*c - '0');
                }
                if (digits && fd >= 3 && fd != dir && !kept(fd, keep, n)) ::close(fd);
                off += reclen;
            }
        }
        ::close(dir);
        return true;
    }
    unsigned lo = 3;
    for (std::size_t i = 0; i < n; ++i) {
        close_each(lo, static_cast<unsigned>(keep[i]) - 1);
        lo = static_cast<unsigned>(keep[i]) + 1;
    }
    close_each(lo, fd_limit);
    return true;
}

}  // namespace

struct ProcessState final : std::enable_shared_from_this<ProcessState>, IoLink {
    ~ProcessState() { close_for_loop(); }

    void start_watch() {
        io_objects(loop).live.push_back(this);
        int pfd = open_pidfd(pid);
        if (pfd >= 0) {
            try {
                ::fcntl(pfd, F_SETFD, FD_CLOEXEC);
                pidfd.reset(new Descriptor(loop->io->context(), pfd));
            } catch (...) {
                ::close(pfd);
                pidfd.reset();
            }
        }
        if (pidfd) {
            std::shared_ptr<ProcessState> self = shared_from_this();
            pidfd->async_wait(Descriptor::wait_read, [self](const boost::system::error_code& ec) {
                if (!ec) self->try_reap();
            });
        } else {
            poll();
        }
    }

    void poll() {
        if (try_reap()) return;
        std::shared_ptr<ProcessState> self = shared_from_this();
        poller = loop->call_at(Clock::now() + kPollEvery, [self] { self->poll(); });
    }

    bool try_reap() noexcept {
        if (exited) return true;
        int status = 0;
        pid_t r;
        do {
            r = ::waitpid(pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0) return false;
        if (r < 0) {  // someone else reaped it (waitpid(-1) elsewhere): nothing to know
            code = 255;
        } else if (WIFEXITED(status)) {
            code = WEXITSTATUS(status);
        } else if (WIFSIGNALED(status)) {
            code = -WTERMSIG(status);
        }
        exited = true;
        release_watch();
        notify_all(waiters);
        return true;
    }

    void release_watch() noexcept {
        unlink();
        poller.cancel();
        if (pidfd) {
            boost::system::error_code ec;
            pidfd->close(ec);
            pidfd.reset();
        }
    }

    void close_for_loop() noexcept override {
        if (!exited && !try_reap()) {
            // Still running as the loop goes away: a thread waits for it instead.
            pid_t p = pid;
            try {
                std::thread([p] {
                    int st;
                    while (::waitpid(p, &st, 0) < 0 && errno == EINTR) {
                    }
                }).detach();
            } catch (...) {
            }
            exited = true;
            code = -SIGKILL;  // unknown; it is no longer ours to watch
        }
        release_watch();
    }

    LoopImpl* loop = nullptr;
    pid_t pid = -1;
    bool exited = false;
    int code = 0;
    std::unique_ptr<Descriptor> pidfd;
    Handle poller;
    List waiters;
    StreamWriter in;
    StreamReader out;
    StreamReader err;
};

namespace {

// ---- the steps of create_subprocess_exec ----

// Refuses, before anything is opened, what could not be started or would be cut short.
void check_request(const std::vector<std::string>& argv, const ProcessOptions& o) {
    if (argv.empty() || argv[0].empty())
        throw std::invalid_argument("asyncfiber: create_subprocess_exec needs a program");
    if (o.stdin_mode == Stdio::to_stdout || o.stdout_mode == Stdio::to_stdout)
        throw std::invalid_argument("asyncfiber: Stdio::to_stdout is for stderr only");
    check_stream_limit(o.limit, "create_subprocess_exec");
    // exec and chdir take C strings: a NUL inside would cut the string short unnoticed.
    auto check_no_nul = [](const std::string& s, const char* what) {
        if (s.find('\0') != std::string::npos)
            throw std::invalid_argument(
                std::string("asyncfiber: create_subprocess_exec: a NUL byte "
                            "inside ") +
                what);
    };
    for (const auto& a : argv) check_no_nul(a, "an argument");
    for (const auto& e : o.env) check_no_nul(e, "an environment entry");
    check_no_nul(o.cwd, "the working directory");
    if (!o.close_fds && !o.pass_fds.empty())
        throw std::invalid_argument("asyncfiber: create_subprocess_exec: pass_fds needs close_fds");
    for (int fd : o.pass_fds) {
        if (fd < 0)
            throw std::invalid_argument("asyncfiber: create_subprocess_exec: pass_fds holds " +
                                        std::to_string(fd));
        if (::fcntl(fd, F_GETFD) < 0)
            throw_errno(errno,
                        "create_subprocess_exec: pass_fds: descriptor " + std::to_string(fd));
    }
}

// Environment: what execve gets, prepared in the parent (the child may not allocate): the
// program's path, the arguments and the environment as arrays of C strings, which point into
// the caller's argv and into `env`.
struct ExecImage {
    ExecImage(const std::vector<std::string>& argv, const ProcessOptions& o)
        : program(find_program(argv[0], o.env, o.replace_env)) {
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        if (!o.replace_env) {
            for (char** e = environ; e && *e; ++e) {
                std::string s(*e);
                std::string key = s.substr(0, s.find('='));
                bool overridden = false;
                for (const auto& x : o.env)
                    if (x.compare(0, key.size() + 1, key + "=") == 0) overridden = true;
                if (!overridden) env.push_back(std::move(s));
            }
        }
        for (const auto& e : o.env) env.push_back(e);
        for (auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);
    }
    ExecImage(const ExecImage&) = delete;
    ExecImage& operator=(const ExecImage&) = delete;

    std::string program;
    std::vector<char*> args;
    std::vector<std::string> env;
    std::vector<char*> envp;
};

// Stdio: the descriptors of the child's standard streams, opened in the parent: the child's
// and the parent's ends of each pipe, and /dev/null (once, for every stream that wants it).
struct ChildStdio {
    explicit ChildStdio(const ProcessOptions& o)
        : modes{o.stdin_mode, o.stdout_mode, o.stderr_mode} {
        for (int i = 0; i < 3; ++i) {
            if (modes[i] == Stdio::pipe) {
                if (i == 0)
                    make_pipe(child[0], parent[0]);
                else
                    make_pipe(parent[i], child[i]);
            } else if (modes[i] == Stdio::devnull && devnull.fd < 0) {
                devnull.fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull.fd < 0) throw_errno(errno, "open /dev/null");
                move_above_stdio(devnull);
            }
        }
    }
    // What the child's stream i is copied from; -1: inherited as it is.
    int source(int i) const noexcept {
        if (modes[i] == Stdio::pipe) return child[i].fd;
        if (modes[i] == Stdio::devnull) return devnull.fd;
        if (modes[i] == Stdio::to_stdout) return 1;
        return -1;
    }
    // Once the child runs: the parent keeps only its own ends.
    void close_child_ends() noexcept {
        for (auto& c : child) c.reset();
        devnull.reset();
    }

    const Stdio modes[3];
    Fd child[3], parent[3], devnull;
};

// What the child keeps above 2, sorted: the error pipe until exec closes it, pass_fds.
std::vector<int> kept_descriptors(int errpipe, const ProcessOptions& o) {
    std::vector<int> keep{errpipe};
    for (int fd : o.pass_fds)
        if (fd > 2) keep.push_back(fd);
    std::sort(keep.begin(), keep.end());
    keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
    return keep;
}

// The highest descriptor number the child may have to close one by one (the last resort of
// close_fds_except).
unsigned descriptor_limit() noexcept {
    rlimit nofile{};
    return ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1u << 20)
               ? static_cast<unsigned>(nofile.rlim_cur)
               : (1u << 20);
}

// Spawn, in the child, between fork and exec: async-signal-safe calls only. Sets up the
// standard streams, closes what it must not keep, changes directory and execs; a failure
// goes to the parent through `errpipe` as a ChildFailure.
[[noreturn]] void run_child(const ExecImage& image, const ChildStdio& stdio,
                            const std::vector<int>& keep, unsigned fd_limit,
                            const ProcessOptions& o, int errpipe) noexcept {
    ChildFailure failure{ChildStep::stdio, 0};
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i < 3; ++i) {  // every source is above 2 but to_stdout's 1, set up by now
        int src = stdio.source(i);
        if (src >= 0 && ::dup2(src, i) < 0) goto fail;
    }
    failure.step = ChildStep::close_fds;
    if (o.close_fds) {
        if (!close_fds_except(keep.data(), keep.size(), fd_limit)) goto fail;
        for (int fd : keep) {  // pass_fds survive exec even if they were close-on-exec
            if (fd == errpipe) continue;
            int fl = ::fcntl(fd, F_GETFD);
            if (fl < 0 || ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) < 0) goto fail;
        }
    }
    failure.step = ChildStep::cwd;
    if (!o.cwd.empty() && ::chdir(o.cwd.c_str()) != 0) goto fail;
    failure.step = ChildStep::exec;
    ::execve(image.program.c_str(), image.args.data(), image.envp.data());
fail:
    failure.err = errno;
    ssize_t ignored = ::write(errpipe, &failure, sizeof failure);
    (void)ignored;
    ::_exit(127);
}

// Spawn, in the parent, once the child reported a failure (and was reaped): its exception.
[[noreturn]] void throw_child_failure(const ChildFailure& failure, const std::string& name,
                                      const ProcessOptions& o) {
    const std::string running = " (running '" + name + "')";
    switch (failure.step) {
    case ChildStep::stdio:
        throw_errno(failure.err,
                    "create_subprocess_exec: cannot set up the standard streams" + running);
    case ChildStep::close_fds:
        throw_errno(failure.err,
                    "create_subprocess_exec: cannot close or pass descriptors" + running);
    case ChildStep::cwd:
        throw_errno(failure.err,
                    "create_subprocess_exec: cannot change to the working "
                    "directory '" +
                        o.cwd + "'" + running);
    case ChildStep::exec:
        break;
    }
    throw_errno(failure.err, "create_subprocess_exec: cannot run '" + name + "'");
}

// Spawn: forks; returns the child's pid once its exec succeeded (the error pipe, closed on
// exec, reads EOF), or reaps it and throws what it reported.
pid_t spawn(const ExecImage& image, ChildStdio& stdio, const std::string& name,
            const ProcessOptions& o) {
    Fd errpipe_r, errpipe_w;
    make_pipe(errpipe_r, errpipe_w);
    const std::vector<int> keep = kept_descriptors(errpipe_w.fd, o);
    const unsigned fd_limit = descriptor_limit();

    pid_t pid = ::fork();
    if (pid < 0) throw_errno(errno, "fork");
    if (pid == 0) run_child(image, stdio, keep, fd_limit, o, errpipe_w.fd);

    errpipe_w.reset();
    stdio.close_child_ends();
    ChildFailure failure{ChildStep::exec, 0};
    ssize_t n;
    do {
        n = ::read(errpipe_r.fd, &failure, sizeof failure);  // EOF once exec succeeded
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        int st;
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        throw_child_failure(failure, name, o);
    }
    return pid;
}

}  // namespace

// The count behind Process handles (asyncfiber/detail/state_share.hpp).
template void intrusive_add_ref<ProcessState>(StateShare<ProcessState>*) noexcept;
template void intrusive_release<ProcessState>(StateShare<ProcessState>*) noexcept;

namespace {

// Adopt: the running child goes to the loop, which reaps it; the parent's pipe ends become
// its streams.
Process adopt(LoopImpl* L, pid_t pid, ChildStdio& stdio, std::size_t limit) {
    auto s = std::make_shared<ProcessState>();
    s->loop = L;
    s->pid = pid;
    s->start_watch();
    auto pipe_core = [&](Fd& end) {
        return std::make_shared<StreamCore>(L, end.release(), StreamCore::Kind::pipe, limit);
    };
    if (stdio.parent[0].fd >= 0) s->in = make_stream_pair(pipe_core(stdio.parent[0])).second;
    if (stdio.parent[1].fd >= 0) s->out = make_stream_pair(pipe_core(stdio.parent[1])).first;
    if (stdio.parent[2].fd >= 0) s->err = make_stream_pair(pipe_core(stdio.parent[2])).first;
    return share_state<Process>(std::move(s));
}

}  // namespace
}  // namespace detail

Process create_subprocess_exec(const std::vector<std::string>& argv, const ProcessOptions& o) {
    using namespace detail;
    LoopImpl* L = loop_checked("af::create_subprocess_exec");
    check_request(argv, o);
    const ExecImage image(argv, o);
    ChildStdio stdio(o);
    const pid_t pid = spawn(image, stdio, argv[0], o);
    return adopt(L, pid, stdio, o.limit);
}

detail::ProcessState& Process::state() const {
    if (!s_) throw InvalidStateError("asyncfiber: use of an empty Process");
    return *s_->state;
}

pid_t Process::pid() const { return state().pid; }

StreamWriter Process::stdin_pipe() const {
    if (!state().in) throw InvalidStateError("asyncfiber: the process' stdin is not a pipe");
    return state().in;
}

StreamReader Process::stdout_pipe() const {
    if (!state().out) throw InvalidStateError("asyncfiber: the process' stdout is not a pipe");
    return state().out;
}

StreamReader Process::stderr_pipe() const {
    if (!state().err) throw InvalidStateError("asyncfiber: the process' stderr is not a pipe");
    return state().err;
}

bool Process::has_exited() const { return state().exited; }

int Process::returncode() const {
    if (!state().exited) throw InvalidStateError("asyncfiber: the process is still running");
    return state().code;
}

int Process::wait() {
    detail::ProcessState& s = state();
    detail::TaskBase* self = detail::current_task_checked("Process::wait");
    while (!s.exited) {
        detail::Waiter w(self);
        s.waiters.push_back(&w);
        detail::park(w, "Process::wait");
    }
    return s.code;
}

std::pair<std::string, std::string> Process::communicate(const std::string& input) {
    detail::ProcessState& s = state();
    detail::current_task_checked("Process::communicate");
    StreamReader out = s.out, err = s.err;
    auto read_all = [](StreamReader r) { return r ? r.read(-1) : std::string(); };
    Task<std::string> out_t = asyncfiber::async(read_all, out);
    Task<std::string> err_t = asyncfiber::async(read_all, err);
    try {
        if (s.in) {
            StreamWriter in = s.in;
            try {
                if (!input.empty()) {
                    in.write(input);
                    in.drain();
                }
            } catch (const std::system_error& e) {
                // The child does not read all its input (it exited or closed stdin): as
                // asyncio, that is not the caller's error.
                if (e.code().value() != EPIPE && e.code().value() != ECONNRESET) throw;
            }
            in.close();
        }
        auto both = asyncfiber::gather(out_t, err_t);
        wait();
        return {std::move(std::get<0>(both)), std::move(std::get<1>(both))};
    } catch (...) {
        out_t.cancel();
        err_t.cancel();
        throw;
    }
}

void Process::send_signal(int sig) {
    detail::ProcessState& s = state();
    if (s.exited) return;  // reaped: the pid may belong to someone else now
    if (::kill(s.pid, sig) != 0 && errno != ESRCH) detail::throw_errno(errno, "kill");
}

void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

}  // namespace asyncfiber
