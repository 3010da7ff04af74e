// Subprocesses: pipes as streams, communicate, exit codes, signals, reaping.
#include <asyncfiber/asyncfiber.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <string>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {
af::ProcessOptions piped() {
    af::ProcessOptions o;
    o.stdin_mode = af::Stdio::pipe;
    o.stdout_mode = af::Stdio::pipe;
    o.stderr_mode = af::Stdio::pipe;
    return o;
}
// True if `pid` is no longer a child of ours (reaped), false if it is still there.
bool reaped(pid_t pid) {
    int st;
    return ::waitpid(pid, &st, WNOHANG) < 0 && errno == ECHILD;
}
}  // namespace

TEST(Process, CommunicateThroughCat) {
    af::run([] {
        af::Process p = af::create_subprocess_exec({"cat"}, piped());
        std::string big(300000, 'c');  // more than a pipe holds: needs concurrent reading
        auto res = p.communicate(big);
        EXPECT_EQ(res.first, big);
        EXPECT_EQ(res.second, "");
        EXPECT_EQ(p.returncode(), 0);
        EXPECT_TRUE(reaped(p.pid()));
    });
}

TEST(Process, LineByLineOverPipes) {
    af::run([] {
        af::Process p = af::create_subprocess_exec({"cat"}, piped());
        af::StreamWriter in = p.stdin_pipe();
        af::StreamReader out = p.stdout_pipe();
        for (int i = 0; i < 20; ++i) {
            in.write("l" + std::to_string(i) + "\n");
            in.drain();
            EXPECT_EQ(out.readline(), "l" + std::to_string(i) + "\n");
        }
        in.close();
        EXPECT_EQ(out.read(-1), "");
        EXPECT_EQ(p.wait(), 0);
    });
}

TEST(Process, ExitCodesStderrAndEnvironment) {
    af::run([] {
        af::ProcessOptions o = piped();
        o.env = {"AF_TEST_VAR=hello"};
        af::Process p = af::create_subprocess_exec(
            {"sh", "-c", "echo out; echo \"err $AF_TEST_VAR\" >&2; exit 3"}, o);
        auto res = p.communicate();
        EXPECT_EQ(res.first, "out\n");
        EXPECT_EQ(res.second, "err hello\n");
        EXPECT_EQ(p.returncode(), 3);

        af::ProcessOptions merged;
        merged.stdout_mode = af::Stdio::pipe;
        merged.stderr_mode = af::Stdio::to_stdout;
        merged.cwd = "/";
        af::Process q = af::create_subprocess_exec({"sh", "-c", "pwd; echo e >&2"}, merged);
        EXPECT_EQ(q.stdout_pipe().read(-1), "/\ne\n");
        EXPECT_EQ(q.wait(), 0);
        EXPECT_THROW(q.stdin_pipe(), af::InvalidStateError);
    });
}

TEST(Process, SignalsAndTerminate) {
    af::run([] {
        af::Process p = af::create_subprocess_exec({"sleep", "30"});
        EXPECT_FALSE(p.has_exited());
        EXPECT_THROW(p.returncode(), af::InvalidStateError);
        auto t0 = af::Clock::now();
        p.terminate();
        EXPECT_EQ(p.wait(), -SIGTERM);
        EXPECT_LT(af::Clock::now() - t0, 5s);
        p.kill();  // reaped already: no-op, no stray signal
        af::Process q = af::create_subprocess_exec({"sleep", "30"});
        q.kill();
        EXPECT_EQ(q.wait(), -SIGKILL);
        EXPECT_TRUE(reaped(q.pid()));
    });
}

TEST(Process, WaitIsCancellableAndTheChildIsStillReaped) {
    pid_t pid = 0;
    af::run([&] {
        af::Process p = af::create_subprocess_exec({"sleep", "0.2"});
        pid = p.pid();
        auto w = af::async([p]() mutable { return p.wait(); });
        af::sleep(10ms);
        w.cancel();
        EXPECT_THROW(af::await(w), af::CancelledError);
        // The handle is dropped without waiting: the loop still reaps the child.
        af::sleep(400ms);
        EXPECT_TRUE(reaped(pid));
    });
}

TEST(Process, ChildOutlivingTheLoopIsNotAZombie) {
    pid_t pid = 0;
    af::run([&] { pid = af::create_subprocess_exec({"sleep", "0.1"}).pid(); });
    // The loop is closed; a thread reaps the child once it exits.
    for (int i = 0; i < 100 && !reaped(pid); ++i) ::usleep(20000);
    EXPECT_TRUE(reaped(pid));
}

TEST(Process, UnknownProgramAndBadUse) {
    af::run([] {
        try {
            af::create_subprocess_exec({"/nonexistent/program"});
            FAIL() << "started a missing program";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), ENOENT);
        }
        EXPECT_THROW(af::create_subprocess_exec({"no-such-program-af"}), std::system_error);
        EXPECT_THROW(af::create_subprocess_exec({}), std::invalid_argument);
    });
    EXPECT_THROW(af::create_subprocess_exec({"true"}), af::RuntimeError);
}

TEST(Process, WritingToAChildThatExitedIsAnErrorNotASignal) {
    af::run([] {
        af::ProcessOptions o;
        o.stdin_mode = af::Stdio::pipe;
        af::Process p = af::create_subprocess_exec({"true"}, o);
        p.wait();
        af::StreamWriter in = p.stdin_pipe();
        in.write(std::string(100000, 'x'));  // EPIPE, not SIGPIPE
        EXPECT_THROW(in.drain(), std::system_error);
    });
}

namespace {
// "open" or "closed" for each descriptor number, as the child sees its own table.
std::string child_sees(const std::vector<int>& fds, const af::ProcessOptions& base = {}) {
    af::ProcessOptions o = base;
    o.stdout_mode = af::Stdio::pipe;
    std::vector<std::string> argv = {"sh", "-c",
                                     "for fd in \"$@\"; do if [ -e /proc/$$/fd/$fd ]; then echo "
                                     "open; else echo closed; fi; done",
                                     "sh"};
    for (int fd : fds) argv.push_back(std::to_string(fd));
    af::Process p = af::create_subprocess_exec(argv, o);
    std::string out = p.stdout_pipe().read(-1);
    EXPECT_EQ(p.wait(), 0);
    return out;
}
}  // namespace

// asyncio's default close_fds=True: a descriptor the parent opened without close-on-exec
// (here both ends of a pipe) does not reach the child. It used to.
TEST(Process, ChildDoesNotInheritDescriptorsOpenedWithoutCloseOnExec) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);  // no O_CLOEXEC
    af::run([&] { EXPECT_EQ(child_sees({p[0], p[1]}), "closed\nclosed\n"); });
    ::close(p[0]);
    ::close(p[1]);
}

// pass_fds (subprocess's): the listed descriptors reach the child at the same numbers, even
// with close-on-exec set; the rest are closed. close_fds = false keeps the old inheritance.
TEST(Process, PassFdsKeepsTheListedDescriptors) {
    int kept[2], other[2];
    ASSERT_EQ(::pipe2(kept, O_CLOEXEC), 0);
    ASSERT_EQ(::pipe(other), 0);
    af::run([&] {
        af::ProcessOptions o;
        o.pass_fds = {kept[1]};
        EXPECT_EQ(child_sees({kept[1], other[1]}, o), "open\nclosed\n");
        // The child writes through the passed descriptor; the parent reads it from the pipe.
        af::Process w = af::create_subprocess_exec(
            {"sh", "-c", "echo through > /proc/self/fd/" + std::to_string(kept[1])}, o);
        EXPECT_EQ(w.wait(), 0);
        ::fcntl(kept[0], F_SETFL, O_NONBLOCK);  // a failure above leaves nothing to read
        char buf[16] = {};
        EXPECT_EQ(::read(kept[0], buf, sizeof buf), 8);
        EXPECT_EQ(std::string(buf), "through\n");
        af::ProcessOptions inherit;
        inherit.close_fds = false;
        EXPECT_EQ(child_sees({kept[1], other[1]}, inherit), "closed\nopen\n");
    });
    for (int fd : {kept[0], kept[1], other[0], other[1]}) ::close(fd);
}

TEST(Process, PassFdsRejectsBadDescriptors) {
    af::run([] {
        af::ProcessOptions neg;
        neg.pass_fds = {-1};
        EXPECT_THROW(af::create_subprocess_exec({"true"}, neg), std::invalid_argument);
        int p[2];
        ASSERT_EQ(::pipe(p), 0);
        ::close(p[0]);
        ::close(p[1]);
        af::ProcessOptions closed;
        closed.pass_fds = {p[0]};
        try {
            af::create_subprocess_exec({"true"}, closed);
            ADD_FAILURE() << "a closed descriptor was passed";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), EBADF);
            EXPECT_NE(std::string(e.what()).find(std::to_string(p[0])), std::string::npos)
                << e.what();
        }
        af::ProcessOptions inherit;
        inherit.close_fds = false;
        inherit.pass_fds = {0};
        EXPECT_THROW(af::create_subprocess_exec({"true"}, inherit), std::invalid_argument);
    });
}

// A working directory that does not exist is reported as such, with errno's text, not as
// "cannot run 'true'".
TEST(Process, MissingWorkingDirectoryIsNamed) {
    af::run([] {
        af::ProcessOptions o;
        o.cwd = "/nonexistent-af-dir/sub";
        try {
            af::create_subprocess_exec({"true"}, o);
            ADD_FAILURE() << "started in a missing directory";
        } catch (const std::system_error& e) {
            const std::string what = e.what();
            EXPECT_EQ(e.code().value(), ENOENT);
            EXPECT_NE(what.find("/nonexistent-af-dir/sub"), std::string::npos) << what;
            EXPECT_NE(what.find(std::strerror(ENOENT)), std::string::npos) << what;
            EXPECT_EQ(what.find("cannot run"), std::string::npos) << what;
        }
    });
}

namespace {
// Runs `body` inside af::run in a forked copy of this test process, after closing the
// descriptors in `closed` (inside the loop, so the loop's own descriptors are not among
// them), and returns what went wrong: "" when nothing did. The copy reports through a pipe
// opened before its standard streams were closed.
std::string with_closed_stdio(std::vector<int> closed, std::function<std::string()> body) {
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) return "pipe2 failed";
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(report[0]);
        std::string what;
        try {
            af::run([&] {
                for (int fd : closed) ::close(fd);
                what = body();
            });
        } catch (const std::exception& e) {
            what = std::string("threw: ") + e.what();
        }
        ssize_t ignored = ::write(report[1], what.data(), what.size());
        (void)ignored;
        ::_exit(0);
    }
    ::close(report[1]);
    std::string what;
    char buf[256];
    ssize_t n;
    while ((n = ::read(report[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) what.append(buf, static_cast<std::size_t>(n));
    ::close(report[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        what += " (the test process ended with status " + std::to_string(status) + ")";
    return what;
}

// Each stream through its pipe: stdin echoed to stdout, a line on stderr.
std::string streams_go_through(const af::ProcessOptions& o, const std::string& want_err) {
    af::Process p = af::create_subprocess_exec({"sh", "-c", "cat; echo err >&2"}, o);
    auto res = p.communicate("in\n");
    std::string what;
    if (res.first != "in\n" + (o.stderr_mode == af::Stdio::to_stdout ? want_err : ""))
        what += "stdout: '" + res.first + "' ";
    if (o.stderr_mode == af::Stdio::pipe && res.second != want_err)
        what += "stderr: '" + res.second + "' ";
    if (p.returncode() != 0) what += "exit code " + std::to_string(p.returncode());
    return what;
}
}  // namespace

// subprocess's handling of a parent without standard streams: with descriptor 0, 1 or 2
// closed, a pipe (or /dev/null) opened for the child can land on that number; the child
// still gets each stream, and the parent still learns why an exec failed. The child's
// stream used to stay close-on-exec (dup2 onto its own number changes nothing) and vanish at
// exec, and the error pipe could be overwritten by a standard stream.
TEST(Process, PipesReachTheChildWhenTheParentClosedItsStandardStreams) {
    auto with_stderr = [](af::Stdio mode) {
        af::ProcessOptions o = piped();
        o.stderr_mode = mode;
        return o;
    };
    // An exec failure still comes back through the error pipe.
    auto missing_cwd_is_reported = [] {
        af::ProcessOptions o;
        o.stderr_mode = af::Stdio::devnull;
        o.cwd = "/nonexistent-af-dir";
        try {
            af::Process p = af::create_subprocess_exec({"true"}, o);
            return "started, exit code " + std::to_string(p.wait());
        } catch (const std::system_error& e) {
            return e.code().value() == ENOENT ? std::string() : std::string(e.what());
        }
    };
    const std::vector<std::pair<const char*, std::function<std::string()>>> cases = {
        {"all piped", [] { return streams_go_through(piped(), "err\n"); }},
        {"stderr to stdout",
         [&] { return streams_go_through(with_stderr(af::Stdio::to_stdout), "err\n"); }},
        {"stderr to /dev/null",
         [&] { return streams_go_through(with_stderr(af::Stdio::devnull), ""); }},
        {"missing working directory", missing_cwd_is_reported},
    };
    const std::vector<std::vector<int>> closed_sets = {{0}, {1}, {2}, {0, 1}, {1, 2}, {0, 1, 2}};
    for (const auto& closed : closed_sets) {
        std::string name;
        for (int fd : closed) name += std::to_string(fd) + " ";
        for (const auto& c : cases)
            EXPECT_EQ(with_closed_stdio(closed, c.second), "")
                << "closed: " << name << "(" << c.first << ")";
    }
}
