// A small fake "legacy" client library, as vendor SDKs often look: every call takes a
// completion callback, errors come as std::error_code, and the answer arrives on the
// library's own worker thread. It stands in for the real thing in the migration walk-through
// (docs/migrating-callbacks.md); nothing in it knows about asyncfiber.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace legacy {

enum class kv_errc { not_found = 1, unreachable = 2 };

inline const std::error_category& kv_category() {
    struct Category : std::error_category {
        const char* name() const noexcept override { return "legacy-kv"; }
        std::string message(int c) const override {
            return c == 1 ? "key not found" : c == 2 ? "server unreachable" : "unknown error";
        }
    };
    static const Category cat;
    return cat;
}
inline std::error_code make_error_code(kv_errc e) { return {static_cast<int>(e), kv_category()}; }

/// The library's client: one worker thread answers every request after a short delay.
class Client {
public:
    Client() : worker_([this] { run(); }) {
        data_["user:1"] = "ada";
        data_["user:2"] = "grace";
        data_["settings:ada"] = "theme=dark";
        data_["settings:grace"] = "theme=light";
    }
    ~Client() {
        {
            std::lock_guard<std::mutex> lk(m_);
            stop_ = true;
        }
        cv_.notify_all();
        worker_.join();
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Connects; the callback gets a session id (0 on error).
    void connect(const std::string& host, std::function<void(std::error_code, int)> done) {
        later([this, host, done] {
            if (host != "kv.local") return done(make_error_code(kv_errc::unreachable), 0);
            done({}, ++sessions_);
        });
    }
    void get(int session, const std::string& key,
             std::function<void(std::error_code, std::string)> done) {
        later([this, session, key, done] {
            std::string v;
            {
                std::lock_guard<std::mutex> lk(m_);
                auto it = data_.find(key);
                if (session <= 0 || it == data_.end())
                    return done(make_error_code(kv_errc::not_found), std::string());
                v = it->second;
            }
            done({}, v);
        });
    }
    void put(int session, const std::string& key, const std::string& value,
             std::function<void(std::error_code)> done) {
        later([this, session, key, value, done] {
            if (session <= 0) return done(make_error_code(kv_errc::unreachable));
            {
                std::lock_guard<std::mutex> lk(m_);
                data_[key] = value;
            }
            done({});
        });
    }
    /// A blocking call of the same library (no callback variant exists).
    std::string checksum_blocking(const std::string& s) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        unsigned h = 2166136261u;
        for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
        return std::to_string(h);
    }

private:
    void later(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lk(m_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }
    void run() {
        std::unique_lock<std::mutex> lk(m_);
        for (;;) {
            cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            auto job = std::move(jobs_.front());
            jobs_.pop_front();
            lk.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // the network
            job();
            lk.lock();
        }
    }

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::map<std::string, std::string> data_;
    int sessions_ = 0;  // worker thread only
    bool stop_ = false;
    std::thread worker_;
};

}  // namespace legacy

namespace std {
template <>
struct is_error_code_enum<legacy::kv_errc> : true_type {};
}  // namespace std
