// Internal: the per-thread cache of task blocks (see task_blocks.cpp).
#pragma once

#include <cstddef>

namespace asyncfiber {
namespace detail {

void* allocate_task_block(std::size_t n);
void free_task_block(void* p, std::size_t n) noexcept;
/// Gives most cached blocks back to malloc (the loop calls it when it idles).
void trim_task_blocks() noexcept;
/// Whether trim_task_blocks() would give memory back.
bool task_blocks_have_spare() noexcept;

}  // namespace detail
}  // namespace asyncfiber
