// The line echo server handler the stream tests share: echoes each line until EOF, then closes.
#pragma once

#include <asyncfiber/net.hpp>

#include <string>

inline void echo_lines(asyncfiber::StreamReader r, asyncfiber::StreamWriter w) {
    for (;;) {
        std::string line = r.readline();
        if (line.empty()) break;
        w.write(line);
        w.drain();
    }
    w.close();
}
