// Step 2: one thin awaitable wrapper per library call (each a single await_callback), and
// the module rewritten as straight-line code on top of them. Errors are exceptions, so the
// four hand-written "if (ec) return done(ec, ...)" lines disappear.
#include "legacy_kv.hpp"

#include <asyncfiber/asyncfiber.hpp>

#include <cstdio>

namespace af = asyncfiber;

namespace {

struct Profile {
    std::string name, settings;
};

// [wrappers]
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
// [/wrappers]

// [module]
Profile load_profile(legacy::Client& kv, int user_id) {
    int session = connect(kv, "kv.local");
    std::string name = get(kv, session, "user:" + std::to_string(user_id));
    std::string settings = get(kv, session, "settings:" + name);
    put(kv, session, "last_seen:" + name, "now");
    return Profile{name, settings};
}
// [/module]

}  // namespace

int main() {
    legacy::Client kv;
    af::run([&] {
        for (int id : {1, 2, 3}) {
            try {
                Profile p = load_profile(kv, id);
                std::printf("user %d: %s (%s)\n", id, p.name.c_str(), p.settings.c_str());
            } catch (const std::system_error& e) {
                std::printf("user %d: error: %s\n", id, e.code().message().c_str());
            }
        }
    });
}
