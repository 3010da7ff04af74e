// Step 1: the program moves onto a loop; the module stays exactly as it was. Its final
// callback is awaited with af::await_callback, so the caller is straight-line code, and the
// condition variable is gone. Nothing else changes: this step is safe to ship alone.
#include "legacy_kv.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <cstdio>

namespace af = asyncfiber;

namespace {

struct Profile {
    std::string name, settings;
};

// [module] unchanged from step 0
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
    af::run([&] {
        for (int id : {1, 2, 3}) {
            try {
                // error_code first -> std::system_error; the callback may fire on the
                // library's thread: the task wakes on the loop's.
                Profile p = af::await_callback<Profile>(
                    [&](af::Callback<Profile> cb) { load_profile(kv, id, cb); });
                std::printf("user %d: %s (%s)\n", id, p.name.c_str(), p.settings.c_str());
            } catch (const std::system_error& e) {
                std::printf("user %d: error: %s\n", id, e.code().message().c_str());
            }
        }
    });
}
