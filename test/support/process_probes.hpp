// What tests, stress tests and fuzz targets read about the whole process to prove that
// nothing was left behind: descriptors, heap bytes, resident memory.
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <malloc.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace probes {

/// Entries in /proc/self/fd (the directory's own descriptor included, so compare counts).
inline std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n;
}

/// The descriptors an I/O library opens: sockets, and epoll / eventfd / timerfd / pidfd
/// instances ("anon_inode:"). Unlike open_fds(), blind to the pipes that a sanitizer's
/// symbolizer opens, once, in the middle of a fuzzing run.
inline std::size_t open_io_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            char path[300], target[256];
            std::snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
            ssize_t len = ::readlink(path, target, sizeof target - 1);
            if (len <= 0) continue;
            target[len] = '\0';
            if (std::strncmp(target, "socket:", 7) == 0 ||
                std::strncmp(target, "anon_inode:", 11) == 0)
                ++n;
        }
        ::closedir(d);
    }
    return n;
}

/// "fd -> target" for every open descriptor, one a line: what a failed open_fds() check
/// prints, so that a leak says what leaked.
inline std::string describe_fds() {
    std::string out;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            char target[256] = {};
            std::string link = std::string("/proc/self/fd/") + e->d_name;
            ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
            out += std::string(e->d_name) + " -> " + (n > 0 ? target : "?") + "\n";
        }
        ::closedir(d);
    }
    return out;
}

/// Bytes malloc has handed out and not got back (what a leak would grow).
inline std::size_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    return mallinfo2().uordblks;
#else
    return static_cast<std::size_t>(mallinfo().uordblks);
#endif
}

/// The process's resident set, in bytes.
inline long resident_bytes() {
    long size = 0, resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * ::sysconf(_SC_PAGESIZE);
}

/// CPU time the process has used (user and system), in seconds: what a busy loop would grow.
inline double cpu_seconds() {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace probes
