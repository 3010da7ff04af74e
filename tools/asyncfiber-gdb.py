# gdb commands for asyncfiber: list a loop's tasks and show a suspended task's stack.
#
#   (gdb) source tools/asyncfiber-gdb.py
#   (gdb) af-tasks                 # tasks of the loop current on the selected thread
#   (gdb) af-bt <task>             # backtrace of a suspended task (a TaskBase* expression
#                                  # or the id printed by af-tasks / af::dump_tasks)
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
    return gdb.parse_and_eval("'asyncfiber::detail::current_loop'()")


def _tasks(loop):
    # The live list links TaskBase's LiveLink base; gdb's cast to the derived type adjusts.
    link_t = gdb.lookup_type("asyncfiber::detail::LiveLink").pointer()
    task_t = gdb.lookup_type("asyncfiber::detail::TaskBase").pointer()
    head = loop["live"]["head_"].address
    node = head["next"]
    while node != head:
        yield node.cast(link_t).cast(task_t)
        node = node["next"]


def _name(t):
    extras = t["extras_"]  # TaskExtras*, made only for tasks with a name (or the like)
    name = extras.dereference()["name"].format_string().strip('"') if int(extras) else ""
    return name or "Task-%d" % int(t["id"])


def _find(arg):
    arg = arg.strip()
    if arg.isdigit():
        for t in _tasks(_loop()):
            if int(t["id"]) == int(arg):
                return t
        raise gdb.GdbError("no live task with id " + arg)
    return gdb.parse_and_eval(arg).cast(gdb.lookup_type("asyncfiber::detail::TaskBase").pointer())


class AfTasks(gdb.Command):
    """List the live tasks of the loop current on the selected thread."""

    def __init__(self):
        super().__init__("af-tasks", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        loop = _loop()
        if int(loop) == 0:
            raise gdb.GdbError("no asyncfiber loop runs on this thread")
        for t in _tasks(loop):
            name = _name(t)
            # What a task waits on is kept in its stack's record (stale while it runs).
            stack = t["stack"]
            what = stack["waiting_on"] if int(stack) and STATUS.get(int(t["status"])) != "running" else 0
            what = what.string() if int(what) else ""
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


AfTasks()
AfBt()
