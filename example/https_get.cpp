// https_get: an HTTPS GET with certificate and host-name verification.
//
//   https_get https://example.org/             trusts the system's CAs
//   https_get https://localhost:8443/ ca.pem   trusts ca.pem's CAs too
//   https_get                                  a demo on its own: makes a certificate for
//                                              localhost with the `openssl` command, serves
//                                              HTTPS with it and fetches from that server
//
// Prints what TLS negotiated, the status line and the body; exits with 1 when the server's
// certificate does not verify (af::SslCertVerificationError) or anything else fails.
#include <asyncfiber/asyncfiber.hpp>

#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace af = asyncfiber;

namespace {

struct Url {
    std::string host;
    unsigned short port = 443;
    std::string path = "/";
};

Url parse(const std::string& url) {
    const std::string scheme = "https://";
    if (url.compare(0, scheme.size(), scheme) != 0)
        throw std::invalid_argument("not an https:// URL: " + url);
    Url u;
    std::string rest = url.substr(scheme.size());
    std::size_t slash = rest.find('/');
    if (slash != std::string::npos) {
        u.path = rest.substr(slash);
        rest.resize(slash);
    }
    std::size_t colon = rest.rfind(':');
    if (colon != std::string::npos && rest.find(']', colon) == std::string::npos) {
        u.port = static_cast<unsigned short>(std::stoi(rest.substr(colon + 1)));
        rest.resize(colon);
    }
    u.host = rest;
    return u;
}

// GET over TLS; the body is whatever comes until the server's close_notify (Connection: close).
void get(const Url& u, const af::SslContext& tls) {
    af::ConnectOptions o;
    o.ssl = &tls;  // server_hostname left empty: the certificate must name u.host
    auto rw = af::open_connection(u.host, u.port, o);
    af::TlsInfo info = rw.second.tls_info();
    std::cout << info.version << " " << info.cipher << " alpn=" << info.alpn_protocol << "\n";
    rw.second.write("GET " + u.path + " HTTP/1.1\r\nHost: " + u.host +
                    "\r\nConnection: close\r\nUser-Agent: asyncfiber-https_get\r\n\r\n");
    std::cout << rw.first.readline();
    while (rw.first.readline() != "\r\n") {  // the headers
        if (rw.first.at_eof()) throw std::runtime_error("the connection ended inside the headers");
    }
    std::cout << rw.first.read(-1);
    rw.second.close();
    rw.second.wait_closed();
}

// The demo's server: one fixed answer, then close (which sends close_notify).
void answer(af::StreamReader reader, af::StreamWriter writer) {
    std::string request = reader.readline();
    for (std::string h = reader.readline(); h != "\r\n" && !h.empty(); h = reader.readline()) {
    }
    writer.write(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        "hello over " +
        writer.tls_info().version + ", you sent " + request);
    writer.close();
}

// A certificate for localhost and its key, made by the openssl command in `dir`; false if
// there is no openssl command.
bool make_certificate(const std::string& dir) {
    af::ProcessOptions po;
    po.stdout_mode = af::Stdio::devnull;
    po.stderr_mode = af::Stdio::devnull;
    try {
        af::Process p = af::create_subprocess_exec(
            {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-sha256", "-days", "1", "-subj", "/CN=localhost", "-addext",
             "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", dir + "/key.pem", "-out",
             dir + "/cert.pem"},
            po);
        return p.wait() == 0;
    } catch (const std::system_error&) {  // no openssl command
        return false;
    }
}

void demo() {
    char dir[] = "/tmp/https_get.XXXXXX";
    if (!::mkdtemp(dir)) throw std::system_error(errno, std::system_category(), "mkdtemp");
    const std::string d = dir, cert = d + "/cert.pem", key = d + "/key.pem";
    struct Cleanup {
        std::string d, cert, key;
        ~Cleanup() {
            ::unlink(cert.c_str());
            ::unlink(key.c_str());
            ::rmdir(d.c_str());
        }
    } cleanup{d, cert, key};
    if (!make_certificate(d)) {
        std::cout << "usage: https_get https://host[:port]/path [ca-file]\n"
                     "(the demo needs the openssl command to make a certificate)\n";
        return;
    }
    af::SslContext server_tls = af::SslContext::server();
    server_tls.use_certificate_chain_file(cert);
    server_tls.use_private_key_file(key);
    server_tls.set_alpn_protocols({"http/1.1"});
    af::ServerOptions so;
    so.ssl = &server_tls;
    af::Server server = af::start_server(answer, "127.0.0.1", 0, so);

    af::SslContext client_tls = af::SslContext::client();
    client_tls.load_verify_file(cert);  // our own certificate is the one trusted CA here
    client_tls.set_alpn_protocols({"http/1.1"});
    get(parse("https://localhost:" + std::to_string(server.port()) + "/hello"), client_tls);
    server.close();
    server.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    try {
        af::run([&] {
            if (argc < 2) return demo();
            af::SslContext tls = af::SslContext::client();
            if (argc > 2) tls.load_verify_file(argv[2]);
            tls.set_alpn_protocols({"http/1.1"});
            get(parse(argv[1]), tls);
        });
    } catch (const af::SslCertVerificationError& e) {
        std::cerr << "https_get: the server's certificate did not verify: " << e.verify_message()
                  << "\n(" << e.what() << ")\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "https_get: " << e.what() << "\n";
        return 1;
    }
}
