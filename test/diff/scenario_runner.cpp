// Runs scenario programs (see scenario.py for the language) on asyncfiber and prints their
// traces, one "=== <file>" header per scenario, for the differential test against asyncio.
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace af = asyncfiber;

namespace {

using Stmt = std::vector<std::string>;
using Defs = std::map<std::string, std::vector<Stmt>>;

struct Boom : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Defs parse(std::istream& in) {
    Defs defs;
    std::vector<Stmt>* cur = nullptr;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ws(line);
        Stmt words;
        for (std::string w; ws >> w;) words.push_back(w);
        if (words.empty() || words[0][0] == '#') continue;
        if (words[0] == "def") {
            if (words.size() != 2) throw std::runtime_error("bad def: " + line);
            cur = &defs[words[1]];
        } else if (words[0] == "end") {
            cur = nullptr;
        } else {
            if (!cur) throw std::runtime_error("statement outside a def: " + line);
            cur->push_back(words);
        }
    }
    if (!defs.count("main")) throw std::runtime_error("no def main");
    return defs;
}

struct Scenario {
    Defs defs;
    std::vector<std::string> trace;
    bool closed = false;
    int spawned = 0;
    std::map<std::string, std::unique_ptr<af::Event>> events;
    std::map<std::string, std::unique_ptr<af::Queue<std::string>>> queues;
    std::map<std::string, std::unique_ptr<af::Lock>> locks;
    std::map<std::string, std::unique_ptr<af::Semaphore>> sems;

    void log(const std::string& label, const std::string& msg) {
        if (!closed) trace.push_back(label + " " + msg);
    }
    af::Event& event(const std::string& name) {
        auto& e = events[name];
        if (!e) e.reset(new af::Event);
        return *e;
    }

    // q0 has maxsize 1, q1 maxsize 2 (as in scenario.py).
    af::Queue<std::string>& queue(const std::string& name) {
        auto& q = queues[name];
        if (!q) q.reset(new af::Queue<std::string>(std::stol(name.substr(1)) + 1));
        return *q;
    }
    af::Lock& lock(const std::string& name) {
        auto& l = locks[name];
        if (!l) l.reset(new af::Lock);
        return *l;
    }
    af::Semaphore& sem(const std::string& name) {
        auto& m = sems[name];
        if (!m) m.reset(new af::Semaphore(2));
        return *m;
    }

    // Runs `acquire`, logging "acquire <name> -> ok | cancelled" (a cancellation ends the
    // task), then yields n times holding it and logs "release <name>"; `release` runs
    // however the hold ends.
    template <class Acquire, class Release>
    void hold(const std::string& label, const std::string& name, int n, Acquire acquire,
              Release release) {
        try {
            acquire();
        } catch (const af::CancelledError&) {
            log(label, "acquire " + name + " -> cancelled");
            throw;
        }
        struct Guard {
            Release& r;
            ~Guard() { r(); }
        } guard{release};
        log(label, "acquire " + name + " -> ok");
        for (int i = 0; i < n; ++i) af::sleep(std::chrono::seconds(0));
        log(label, "release " + name);
    }

    // What asyncio's `except` sees: an error's message, or a cancellation.
    // A task that is cancelled itself logs, then lets the cancellation end it (see
    // scenario.py); `what` is the trace line's prefix.
    template <class F>
    void log_outcome(const std::string& label, const std::string& what, F&& f) {
        try {
            std::string r = f();
            log(label, what + " -> ok " + r);
        } catch (const af::CancelledError&) {
            log(label, what + " -> cancelled");
            if (af::current_task().cancelling() > 0) throw;
        } catch (const std::exception& e) {
            log(label, what + " -> error " + e.what());
            if (af::current_task().cancelling() > 0) throw;
        }
    }

    const std::vector<Stmt>& def(const std::string& name) {
        auto it = defs.find(name);
        if (it == defs.end()) throw std::runtime_error("no def " + name);
        return it->second;
    }

    std::string body(const std::string& name, const std::string& label) {
        std::map<std::string, af::Task<std::string>> tasks;
        auto var = [&](const std::string& v) -> af::Task<std::string>& {
            auto it = tasks.find(v);
            if (it == tasks.end()) throw std::runtime_error("unknown task variable " + v);
            return it->second;
        };
        for (const Stmt& st : def(name)) {
            const std::string& op = st[0];
            if (op == "log") {
                log(label, "log " + st.at(1));
            } else if (op == "yield") {
                af::sleep(std::chrono::seconds(0));
            } else if (op == "spawn") {
                const std::string child = st.at(2) + "#" + std::to_string(++spawned);
                def(st.at(2));
                std::string d = st.at(2);
                tasks[st.at(1)] = af::async([this, d, child] { return body(d, child); });
            } else if (op == "await") {
                af::Task<std::string>& t = var(st.at(1));
                log_outcome(label, "await " + st[1], [&] { return af::await(t); });
            } else if (op == "gather") {
                std::vector<af::Task<std::string>> ts;
                for (std::size_t i = 1; i < st.size(); ++i) ts.push_back(var(st[i]));
                log_outcome(label, "gather", [&] {
                    std::string joined;
                    for (auto& r : af::gather(std::move(ts)))
                        joined += (joined.empty() ? "" : ",") + r;
                    return joined;
                });
            } else if (op == "cancel") {
                log(label,
                    "cancel " + st.at(1) + " -> " + (var(st[1]).cancel() ? "True" : "False"));
            } else if (op == "raise") {
                throw Boom(st.at(1));
            } else if (op == "wait") {
                event(st.at(1)).wait();
            } else if (op == "set") {
                event(st.at(1)).set();
            } else if (op == "put") {
                try {
                    queue(st.at(1)).put(st.at(2));
                } catch (const af::CancelledError&) {
                    log(label, "put " + st[1] + " " + st[2] + " -> cancelled");
                    throw;
                }
                log(label, "put " + st[1] + " " + st[2] + " -> ok");
            } else if (op == "get") {
                std::string v;
                try {
                    v = queue(st.at(1)).get();
                } catch (const af::CancelledError&) {
                    log(label, "get " + st[1] + " -> cancelled");
                    throw;
                }
                log(label, "get " + st[1] + " -> ok " + v);
            } else if (op == "putn") {
                try {
                    queue(st.at(1)).put_nowait(st.at(2));
                    log(label, "putn " + st[1] + " " + st[2] + " -> ok");
                } catch (const af::QueueFull&) {
                    log(label, "putn " + st[1] + " " + st[2] + " -> full");
                }
            } else if (op == "getn") {
                try {
                    std::string v = queue(st.at(1)).get_nowait();
                    log(label, "getn " + st[1] + " -> ok " + v);
                } catch (const af::QueueEmpty&) {
                    log(label, "getn " + st[1] + " -> empty");
                }
            } else if (op == "qsize") {
                log(label, "qsize " + st.at(1) + " -> " + std::to_string(queue(st[1]).qsize()));
            } else if (op == "locked") {
                // A lock guard, as `async with lock:` (std::unique_lock: the guard's release
                // must also run when the acquisition itself is cancelled: then it owns nothing).
                std::unique_lock<af::Lock> guard(lock(st.at(1)), std::defer_lock);
                hold(
                    label, st[1], std::stoi(st.at(2)), [&] { guard.lock(); },
                    [&] {
                        if (guard.owns_lock()) guard.unlock();
                    });
            } else if (op == "held") {
                af::Semaphore& m = sem(st.at(1));
                hold(
                    label, st[1], std::stoi(st.at(2)), [&] { m.acquire(); }, [&] { m.release(); });
            } else if (op == "pump") {
                const int k = std::stoi(st.at(1));
                for (int n = 0;;) {
                    for (int i = 0; i < k; ++i) af::sleep(std::chrono::seconds(0));
                    for (const char* qn : {"q0", "q1"}) {
                        af::Queue<std::string>& q = queue(qn);
                        if (q.empty()) {
                            std::string item = "p" + std::to_string(++n);
                            q.put_nowait(item);
                            log(label, std::string("pump putn ") + qn + " " + item);
                        } else if (q.full()) {
                            log(label, std::string("pump getn ") + qn + " -> " + q.get_nowait());
                        }
                    }
                }
            } else {
                throw std::runtime_error("unknown statement " + op);
            }
        }
        log(label, "end");
        return label;
    }

    void run() {
        try {
            af::run([this] {
                struct Close {
                    Scenario* s;
                    ~Close() { s->closed = true; }
                } close{this};
                return body("main", "main");
            });
        } catch (const Boom& e) {
            trace.push_back(std::string("main failed ") + e.what());
        }
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s scenario-file...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; ++i) {
        std::ifstream in(argv[i]);
        if (!in) {
            std::fprintf(stderr, "cannot read %s\n", argv[i]);
            return 2;
        }
        Scenario s;
        try {
            s.defs = parse(in);
            s.run();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: %s\n", argv[i], e.what());
            return 1;
        }
        std::cout << "=== " << argv[i] << '\n';
        for (auto& l : s.trace) std::cout << l << '\n';
    }
    return 0;
}
