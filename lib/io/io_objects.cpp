// The per-loop registry of I/O objects, closed by Loop::close().
#include "io_objects.hpp"

#include <string>

namespace asyncfiber {
namespace detail {

IoObjects& io_objects(LoopImpl* L) {
    if (!L->io_objects) {
        L->io_objects = std::make_shared<IoObjects>();
        std::weak_ptr<IoObjects> weak = L->io_objects;
        L->close_hooks.push_back([weak] {
            std::shared_ptr<IoObjects> o = weak.lock();
            if (!o) return;
            for (auto& kv : o->signals) {
                boost::system::error_code ec;
                kv.second->set->cancel(ec);
                kv.second->set->clear(ec);
            }
            o->signals.clear();
            while (ListNode* n = o->live.pop_front()) static_cast<IoLink*>(n)->close_for_loop();
        });
    }
    return *L->io_objects;
}

}  // namespace detail
}  // namespace asyncfiber
