// Step 0: the module as it is today. load_profile() chains three calls of the legacy client
// with nested callbacks; every level forwards errors by hand, and the caller blocks on a
// condition variable for the final callback.
#include "legacy_kv.hpp"

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>

namespace {

struct Profile {
    std::string name, settings;
};

// [module]
void load_profile(legacy::Client& kv, int user_id,
                  std::function<void(std::error_code, Profile)> done) {
    kv.connect("kv.local", [&kv, user_id, done](std::error_code ec, int session) {
        if (ec) return done(ec, Profile{});
        kv.get(session, "user:" + std::to_string(user_id),
               [&kv, session, done](std::error_code ec, std::string name) {
                   if (ec) return done(ec, Profile{});
                   kv.get(session, "settings:" + name,
                          [&kv, session, name, done](std::error_code ec, std::string settings) {
                              if (ec) return done(ec, Profile{});
                              kv.put(session, "last_seen:" + name, "now",
                                     [name, settings, done](std::error_code ec) {
                                         if (ec) return done(ec, Profile{});
                                         done({}, Profile{name, settings});
                                     });
                          });
               });
    });
}
// [/module]

}  // namespace

int main() {
    legacy::Client kv;
    for (int id : {1, 2, 3}) {
        std::mutex m;
        std::condition_variable cv;
        bool finished = false;
        load_profile(kv, id, [&](std::error_code ec, Profile p) {
            if (ec)
                std::printf("user %d: error: %s\n", id, ec.message().c_str());
            else
                std::printf("user %d: %s (%s)\n", id, p.name.c_str(), p.settings.c_str());
            std::lock_guard<std::mutex> lk(m);
            finished = true;
            cv.notify_one();
        });
        std::unique_lock<std::mutex> lk(m);
        cv.wait(lk, [&] { return finished; });
    }
}
