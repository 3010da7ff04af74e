// Step 3: what straight-line code buys. The three profiles load concurrently (gather), a
// blocking call of the same library runs on the loop's thread pool (to_thread), and a
// request that takes too long is cancelled: the task wakes at once, the library's late
// answer is dropped safely.
#include "legacy_kv.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <cstdio>

namespace af = asyncfiber;
using namespace std::chrono_literals;

namespace {

struct Profile {
    std::string name, settings, checksum;
};

int connect(legacy::Client& kv, const std::string& host) {
    return af::await_callback<int>([&](af::Callback<int> cb) { kv.connect(host, cb); });
}
std::string get(legacy::Client& kv, int session, const std::string& key) {
    return af::await_callback<std::string>(
        [&](af::Callback<std::string> cb) { kv.get(session, key, cb); });
}
void put(legacy::Client& kv, int session, const std::string& key, const std::string& value) {
    af::await_callback<void>([&](af::Callback<void> cb) { kv.put(session, key, value, cb); });
}

// [module]
Profile load_profile(legacy::Client& kv, int user_id) {
    int session = connect(kv, "kv.local");
    std::string name = get(kv, session, "user:" + std::to_string(user_id));
    std::string settings = get(kv, session, "settings:" + name);
    put(kv, session, "last_seen:" + name, "now");
    std::string sum = af::to_thread([&kv, settings] { return kv.checksum_blocking(settings); });
    return Profile{name, settings, sum};
}
// [/module]

}  // namespace

int main() {
    legacy::Client kv;
    af::run([&] {
        auto outcomes = af::gather_settled([&] { return load_profile(kv, 1); },
                                           [&] { return load_profile(kv, 2); },
                                           [&] { return load_profile(kv, 3); });
        int id = 1;
        auto show = [&id](const af::Outcome<Profile>& o) {
            if (o.ok())
                std::printf("user %d: %s (%s) #%s\n", id, o.value().name.c_str(),
                            o.value().settings.c_str(), o.value().checksum.c_str());
            else
                std::printf("user %d: failed\n", id);
            ++id;
        };
        show(std::get<0>(outcomes));
        show(std::get<1>(outcomes));
        show(std::get<2>(outcomes));

        // A deadline by hand: a watchdog cancels the request after 1 ms.
        auto slow = af::async([&] { return load_profile(kv, 1); });
        auto watchdog = af::async([&] {
            af::sleep(1ms);
            slow.cancel("deadline");
        });
        try {
            af::await(slow);
        } catch (const af::CancelledError& e) {
            std::printf("request cancelled: %s\n", e.what());
        }
        af::await(watchdog);
    });
}
