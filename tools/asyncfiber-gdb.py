# gdb commands for asyncfiber: list a loop's tasks, show which task awaits which, and show a
# suspended task's stack.
#
#   (gdb) source tools/asyncfiber-gdb.py
#   (gdb) af-tasks                 # tasks of the loop current on the selected thread
#   (gdb) af-pstree                # the await graph as a tree (asyncio's pstree): each task
#                                  # that nobody awaits, under each task the tasks it awaits
#   (gdb) af-bt <task>             # backtrace of a suspended task (a TaskBase* expression
#                                  # or the id printed by af-tasks / af::dump_tasks)
#
# af-tasks and af-pstree only read memory, so they work on a core file as well as on a live
# process (select the thread that ran the loop first, e.g. `thread 1`).
#
# A suspended task's registers are saved by Boost.Context's jump_fcontext (x86-64 System V)
# at TaskBase::fctx:
#   +0x00 mxcsr (4 bytes), x87 control word (4 bytes)
#   +0x08 r12   +0x10 r13   +0x18 r14   +0x20 r15   +0x28 rbx   +0x30 rbp
#   +0x38 return address (the task resumes there); its stack pointer is then fctx + 0x40.
# af-bt loads those into the selected frame's registers, prints the backtrace and puts the
# real registers back. It needs a live process (gdb cannot write registers of a core file;
# there, read the values with `x/8gx <fctx>` and use them by hand).
import gdb

STATUS = {0: "created", 1: "ready", 2: "running", 3: "suspended", 4: "done"}


def _loop():
    # The thread's current loop: a thread_local, which gdb reads in a core file too.
    try:
        return gdb.parse_and_eval("'asyncfiber::detail::(anonymous namespace)::t_loop'")
    except gdb.error:
        return gdb.parse_and_eval("'asyncfiber::detail::current_loop'()")


def _running_loop():
    loop = _loop()
    if int(loop) == 0:
        raise gdb.GdbError("no asyncfiber loop runs on this thread")
    return loop


def _list_nodes(lst):
    """The nodes of an intrusive List (asyncfiber::detail::List), first to last."""
    head = lst["head_"].address
    node = head["next"]
    seen = 0
    while int(node) and node != head and seen < 1000000:
        yield node
        node = node["next"]
        seen += 1


def _tasks(loop):
    # The live list links TaskBase's LiveLink base; gdb's cast to the derived type adjusts.
    link_t = gdb.lookup_type("asyncfiber::detail::LiveLink").pointer()
    task_t = gdb.lookup_type("asyncfiber::detail::TaskBase").pointer()
    for node in _list_nodes(loop["live"]):
        yield node.cast(link_t).cast(task_t)


def _waiters(t):
    """The tasks suspended until `t` ends: the `waiter` of each listener of its completion."""
    listener_t = gdb.lookup_type("asyncfiber::detail::DoneListener").pointer()
    for node in _list_nodes(t["listeners"]):
        w = node.cast(listener_t)["waiter"]
        if int(w):
            yield w


def _waiting_on(t):
    # What a task waits on is kept in its stack's record (stale while it runs).
    stack = t["stack"]
    if not int(stack) or STATUS.get(int(t["status"])) == "running":
        return ""
    what = stack["waiting_on"]
    return what.string() if int(what) else ""


def _state(t):
    status = STATUS.get(int(t["status"]), "?")
    what = _waiting_on(t)
    if status == "suspended":
        return "sleeping" if what == "sleep" else "waiting on " + (what or "?")
    if status == "created":
        return "ready (not started)"
    return status


def _name(t):
    extras = t["extras_"]  # TaskExtras*, made only for tasks with a name (or the like)
    name = extras.dereference()["name"].format_string().strip('"') if int(extras) else ""
    return name or "Task-%d" % int(t["id"])


def _find(arg):
    arg = arg.strip()
    if arg.isdigit():
        for t in _tasks(_running_loop()):
            if int(t["id"]) == int(arg):
                return t
        raise gdb.GdbError("no live task with id " + arg)
    return gdb.parse_and_eval(arg).cast(gdb.lookup_type("asyncfiber::detail::TaskBase").pointer())


class AfTasks(gdb.Command):
    """List the live tasks of the loop current on the selected thread."""

    def __init__(self):
        super().__init__("af-tasks", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        for t in _tasks(_running_loop()):
            name = _name(t)
            what = _waiting_on(t)
            print("#%-6d %-24s %-9s %-10s fctx=%s  (TaskBase*)%s" % (
                int(t["id"]), name, STATUS.get(int(t["status"]), "?"), what, t["fctx"], t))


class AfBt(gdb.Command):
    """Backtrace of a suspended task: af-bt <TaskBase* expression | task id>."""

    def __init__(self):
        super().__init__("af-bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        t = _find(arg)
        fctx = int(t["fctx"])
        if fctx == 0:
            raise gdb.GdbError("the task is not suspended (running, not started or done)")
        u64 = gdb.lookup_type("unsigned long").pointer()
        word = lambda off: int(gdb.Value(fctx + off).cast(u64).dereference())
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in ("rsp", "rip", "rbp", "rbx",
                                                                "r12", "r13", "r14", "r15")}
        gdb.execute("select-frame 0")
        try:
            for reg, off in (("r12", 0x08), ("r13", 0x10), ("r14", 0x18), ("r15", 0x20),
                             ("rbx", 0x28), ("rbp", 0x30)):
                gdb.execute("set $%s = %d" % (reg, word(off)))
            gdb.execute("set $rip = %d" % word(0x38))
            gdb.execute("set $rsp = %d" % (fctx + 0x40))
            gdb.execute("bt")
        finally:
            for reg, v in saved.items():
                gdb.execute("set $%s = %d" % (reg, v))


class AfPstree(gdb.Command):
    """The await graph of the loop current on the selected thread, as a tree."""

    def __init__(self):
        super().__init__("af-pstree", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        tasks = list(_tasks(_running_loop()))
        by_addr = {int(t): t for t in tasks}
        awaits = {int(t): [] for t in tasks}   # task -> the tasks it awaits
        awaited = set()
        for t in tasks:
            for w in _waiters(t):
                if int(w) in awaits and int(t) not in awaits[int(w)]:
                    awaits[int(w)].append(int(t))
                    awaited.add(int(t))
        printed = set()

        def label(a):
            t = by_addr[a]
            return "#%d '%s' %s" % (int(t["id"]), _name(t), _state(t))

        def subtree(a, prefix, last, path):
            printed.add(a)
            line = prefix + ("\u2514\u2500\u2500 " if last else "\u251c\u2500\u2500 ") + label(a)
            if a in path:
                print(line + " (await cycle: not followed again)")
                return
            if len(path) == 48:  # as af::dump_tasks
                print(line + " (deeper awaits left out)")
                return
            print(line)
            children = awaits[a]
            for i, c in enumerate(children):
                subtree(c, prefix + ("    " if last else "\u2502   "), i == len(children) - 1, path + [a])

        roots = [int(t) for t in tasks if int(t) not in awaited]
        for i, a in enumerate(roots):
            subtree(a, "  ", i == len(roots) - 1, [])
        for t in tasks:
            if int(t) not in printed:
                print("  (an await cycle, which no task outside it awaits:)")
                subtree(int(t), "  ", True, [])


AfTasks()
AfPstree()
AfBt()
