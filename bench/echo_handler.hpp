// The anchors' echo server handler: 64-byte messages back as they come, until EOF.
#pragma once

#include <asyncfiber/asyncfiber.hpp>

#include <string>

namespace workloads {

inline void echo64(asyncfiber::StreamReader r, asyncfiber::StreamWriter w) {
    try {
        for (;;) {
            std::string data = r.readexactly(64);
            w.write(data);
            w.drain();
        }
    } catch (const asyncfiber::IncompleteReadError&) {
    }
    w.close();
}

}  // namespace workloads
