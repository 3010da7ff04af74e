// asyncfiber - Python asyncio's programming model for C++14, on stackful fibers.
// The umbrella header: includes every topic header (core.hpp is the same without networking
// and without Boost.Asio).
#pragma once

#include <asyncfiber/core.hpp>

#include <asyncfiber/bridge.hpp>
#include <asyncfiber/use_await.hpp>
#include <asyncfiber/net.hpp>
#include <asyncfiber/tls.hpp>
#include <asyncfiber/datagram.hpp>
#include <asyncfiber/process.hpp>
