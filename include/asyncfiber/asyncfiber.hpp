// asyncfiber - Python asyncio's programming model for C++14, on stackful fibers.
// The umbrella header: includes every topic header.
#pragma once

#include <asyncfiber/version.hpp>
#include <asyncfiber/errors.hpp>
#include <asyncfiber/task.hpp>
#include <asyncfiber/context.hpp>
#include <asyncfiber/loop.hpp>
#include <asyncfiber/gather.hpp>
#include <asyncfiber/sync.hpp>
#include <asyncfiber/bridge.hpp>
#include <asyncfiber/concurrent_future.hpp>
#include <asyncfiber/wait.hpp>
#include <asyncfiber/task_group.hpp>
#include <asyncfiber/queue.hpp>
#include <asyncfiber/channel.hpp>
#include <asyncfiber/runtime.hpp>
#include <asyncfiber/debug.hpp>
#include <asyncfiber/net.hpp>
#include <asyncfiber/tls.hpp>
#include <asyncfiber/datagram.hpp>
#include <asyncfiber/process.hpp>
