// Built against an installed asyncfiber: must compile, link (OpenSSL too, through the package
// config or the pkg-config file) and print 42.
#include <asyncfiber/asyncfiber.hpp>

#include <chrono>
#include <cstdio>

namespace af = asyncfiber;

int main() {
    int v = af::run([] {
        auto t = af::async([] {
            af::sleep(std::chrono::milliseconds(1));
            return 21;
        });
        return af::await(t) * 2;
    });
    // TLS pulls OpenSSL in.
    af::SslContext tls = af::SslContext::client();
    if (!tls.verify_peer() || !tls.check_hostname()) return 1;
    std::printf("%d\n", v);
    return v == 42 ? 0 : 1;
}
