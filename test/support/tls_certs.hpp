// Certificates made at run time with OpenSSL's API, for the TLS tests, the TLS fuzz target and
// the TLS benchmarks: nothing private is committed. EC P-256 keys, SHA-256 signatures.
//
//   tls_certs::Pki pki = tls_certs::make_pki();   // a CA, a server and a client certificate
//   server_ctx.use_certificate_chain(pki.server.cert_pem);
//   server_ctx.use_private_key(pki.server.key_pem);
//   client_ctx.add_certificate_authority(pki.ca.cert_pem);
#pragma once

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

namespace tls_certs {

/// A certificate and its private key, both PEM.
struct Issued {
    std::string cert_pem;
    std::string key_pem;
};

/// What to put in a certificate.
struct Spec {
    std::string common_name = "localhost";
    std::vector<std::string> dns = {"localhost"};  ///< subjectAltName DNS entries
    std::vector<std::string> ips = {"127.0.0.1"};  ///< subjectAltName IP entries
    bool ca = false;                               ///< a CA certificate (keyCertSign)
    bool client = false;                           ///< extendedKeyUsage clientAuth, not serverAuth
    long valid_from_s = -3600;                     ///< notBefore, seconds from now
    long valid_until_s = 7 * 24 * 3600;            ///< notAfter, seconds from now
};

namespace detail {

[[noreturn]] inline void fail(const char* what) {
    std::fprintf(stderr, "tls_certs: %s failed\n", what);
    std::abort();
}

struct Free {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
    void operator()(X509* x) const noexcept { X509_free(x); }
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

inline std::string bio_text(BIO* b) {
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    return std::string(p, static_cast<std::size_t>(n));
}

inline Owned<X509> read_cert(const std::string& pem) {
    Owned<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Owned<X509> x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!x) fail("reading a certificate");
    return x;
}

inline Owned<EVP_PKEY> read_key(const std::string& pem) {
    Owned<BIO> b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Owned<EVP_PKEY> k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    if (!k) fail("reading a key");
    return k;
}

inline void add_ext(X509* x, X509V3_CTX* v3, int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, v3, nid, value.c_str());
    if (!ext || !X509_add_ext(x, ext, -1)) fail("a certificate extension");
    X509_EXTENSION_free(ext);
}

}  // namespace detail

/// A certificate for `spec`, signed by `issuer` (self-signed when null).
inline Issued issue(const Spec& spec, const Issued* issuer = nullptr) {
    using detail::Owned;
    Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
    Owned<X509> x(X509_new());
    if (!key || !x) detail::fail("EC P-256 key generation");
    Owned<X509> issuer_cert;
    Owned<EVP_PKEY> issuer_key;
    if (issuer) {
        issuer_cert = detail::read_cert(issuer->cert_pem);
        issuer_key = detail::read_key(issuer->key_pem);
    }
    X509_set_version(x.get(), 2);
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) detail::fail("RAND_bytes");
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), spec.valid_from_s);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), spec.valid_until_s);
    X509_set_pubkey(x.get(), key.get());
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                               -1, 0);
    X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer_cert.get()) : name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer ? issuer_cert.get() : x.get(), x.get(), nullptr, nullptr, 0);
    detail::add_ext(x.get(), &v3, NID_basic_constraints,
                    spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    detail::add_ext(
        x.get(), &v3, NID_key_usage,
        spec.ca ? "critical,keyCertSign,cRLSign,digitalSignature" : "critical,digitalSignature");
    if (!spec.ca)
        detail::add_ext(x.get(), &v3, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
    std::string san;
    for (const std::string& d : spec.dns) san += (san.empty() ? "DNS:" : ",DNS:") + d;
    for (const std::string& ip : spec.ips) san += (san.empty() ? "IP:" : ",IP:") + ip;
    if (!san.empty()) detail::add_ext(x.get(), &v3, NID_subject_alt_name, san);
    detail::add_ext(x.get(), &v3, NID_subject_key_identifier, "hash");
    detail::add_ext(x.get(), &v3, NID_authority_key_identifier, "keyid:always");
    if (!X509_sign(x.get(), issuer ? issuer_key.get() : key.get(), EVP_sha256()))
        detail::fail("X509_sign");
    Owned<BIO> cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509(cb.get(), x.get()) ||
        !PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
        detail::fail("PEM encoding");
    return Issued{detail::bio_text(cb.get()), detail::bio_text(kb.get())};
}

/// A CA, a server certificate it signed for localhost / 127.0.0.1 / ::1, and a client
/// certificate it signed.
struct Pki {
    Issued ca, server, client;
};

inline Pki make_pki() {
    Pki p;
    Spec ca;
    ca.common_name = "asyncfiber test CA";
    ca.dns.clear();
    ca.ips.clear();
    ca.ca = true;
    p.ca = issue(ca);
    Spec server;
    server.ips = {"127.0.0.1", "::1"};
    p.server = issue(server, &p.ca);
    Spec client;
    client.common_name = "asyncfiber test client";
    client.dns.clear();
    client.ips.clear();
    client.client = true;
    p.client = issue(client, &p.ca);
    return p;
}

}  // namespace tls_certs
