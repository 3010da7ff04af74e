"""Scenario programs for the differential test: a generator and an asyncio interpreter.

A scenario is a small program in a line-based language; tools/../scenario_runner (C++) runs the
same program on asyncfiber. Both print one trace line per observable event and the traces
must be identical.

    def <name>            a task body; `main` is the first task
      log <word>          trace "<task> log <word>"
      yield               asyncio.sleep(0) / af::sleep(0)
      spawn <var> <def>   create_task(<def>) / af::async, bound to <var> in this task
      await <var>         trace "<task> await <var> -> ok <result> | error <msg> | cancelled"
      gather <var>...     trace "<task> gather -> ok <r1>,<r2> | error <msg> | cancelled"
      cancel <var>        trace "<task> cancel <var> -> True|False"
      raise <word>        the task fails with Boom(<word>)
      wait <event>        Event.wait() (a cancellation here ends the task)
      set <event>         Event.set()
      # Extension point: queue and lock statements (put/get/acquire/release) go here, in
      # both interpreters and in gen_statement().
    end

A task that is itself cancelled (cancelling() > 0) re-raises after logging an await's or
gather's outcome, as well-behaved asyncio code does; swallowing it could leave a task
waiting forever while the runtime shuts down. Every task logs "end" and returns its label when it reaches its end. A task's label is its
def name and a spawn counter ("worker#3"), assigned when spawned, so labels are the same in
both runtimes. Tracing stops when main ends: what asyncio.run and af::run do afterwards
(cancelling the rest) happens in an order asyncio leaves unspecified.

Only orderings driven by the ready queue are used (no timed sleeps), so traces are
deterministic.
"""
import asyncio
import random


class Boom(Exception):
    pass


def parse(text):
    defs = {}
    cur = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "def":
            cur = defs.setdefault(words[1], [])
        elif words[0] == "end":
            cur = None
        else:
            cur.append(words)
    return defs


def run_asyncio(text):
    defs = parse(text)
    trace = []
    state = {"closed": False, "spawned": 0}
    events = {}

    def log(label, msg):
        if not state["closed"]:
            trace.append(f"{label} {msg}")

    def event(name):
        if name not in events:
            events[name] = asyncio.Event()
        return events[name]

    def outcome_of(exc):
        if isinstance(exc, asyncio.CancelledError):
            return "cancelled"
        return f"error {exc}"

    async def body(name, label):
        tasks = {}
        for st in defs[name]:
            op = st[0]
            if op == "log":
                log(label, f"log {st[1]}")
            elif op == "yield":
                await asyncio.sleep(0)
            elif op == "spawn":
                state["spawned"] += 1
                child = f"{st[2]}#{state['spawned']}"
                tasks[st[1]] = asyncio.create_task(body(st[2], child))
            elif op == "await":
                try:
                    r = await tasks[st[1]]
                    log(label, f"await {st[1]} -> ok {r}")
                except (Exception, asyncio.CancelledError) as e:
                    log(label, f"await {st[1]} -> {outcome_of(e)}")
                    if asyncio.current_task().cancelling():
                        raise  # this task is cancelled itself: a well-behaved task ends
            elif op == "gather":
                try:
                    rs = await asyncio.gather(*[tasks[v] for v in st[1:]])
                    log(label, f"gather -> ok {','.join(rs)}")
                except (Exception, asyncio.CancelledError) as e:
                    log(label, f"gather -> {outcome_of(e)}")
                    if asyncio.current_task().cancelling():
                        raise
            elif op == "cancel":
                log(label, f"cancel {st[1]} -> {tasks[st[1]].cancel()}")
            elif op == "raise":
                raise Boom(st[1])
            elif op == "wait":
                await event(st[1]).wait()
            elif op == "set":
                event(st[1]).set()
            # Extension point: queue and lock statements.
            else:
                raise ValueError(f"unknown statement {st}")
        log(label, "end")
        return label

    async def main():
        try:
            return await body("main", "main")
        finally:
            state["closed"] = True

    try:
        asyncio.run(main())
    except Boom as e:
        trace.append(f"main failed {e}")
    return trace


def generate(seed, with_gather=True):
    """A random scenario: defs form a DAG (def i spawns only defs j > i), so nothing awaits
    itself; events are set by a `setter` task main starts first, so no wait lasts forever."""
    rng = random.Random(seed)
    n = rng.randint(2, 5)
    names = ["main"] + [f"t{i}" for i in range(1, n)]
    events = ["e0", "e1"]
    out = []
    spawn_uses = {nm: 0 for nm in names}

    def gen_def(i):
        name = names[i]
        lines = []
        vars_ = []
        if name == "main":
            lines.append("spawn s setter")
        for k in range(rng.randint(2, 9)):
            r = rng.random()
            later = [j for j in range(i + 1, n) if spawn_uses[names[j]] < 2]
            if r < 0.25 and later:
                j = rng.choice(later)
                spawn_uses[names[j]] += 1
                v = f"v{len(vars_)}"
                vars_.append(v)
                lines.append(f"spawn {v} {names[j]}")
            elif r < 0.40 and vars_:
                lines.append(f"await {rng.choice(vars_)}")
            elif r < 0.47 and len(vars_) >= 2 and with_gather:
                lines.append("gather " + " ".join(rng.sample(vars_, rng.randint(2, len(vars_)))))
            elif r < 0.55 and vars_:
                lines.append(f"cancel {rng.choice(vars_)}")
            elif r < 0.70:
                lines.append("yield")
            elif r < 0.78 and name != "main":
                lines.append(f"wait {rng.choice(events)}")
            elif r < 0.81:
                lines.append(f"set {rng.choice(events)}")
            elif r < 0.84 and name != "main":
                lines.append(f"raise boom{i}_{k}")
            # Extension point: queue and lock statements.
            else:
                lines.append(f"log x{k}")
        if name == "main":  # await some children, as a program would
            for v in vars_:
                if rng.random() < 0.5:
                    lines.append(f"await {v}")
        return lines

    setter = ["yield"] * rng.randint(0, 6) + ["set e0"] + ["yield"] * rng.randint(0, 4) + ["set e1"]
    out.append("def setter")
    out += ["  " + s for s in setter]
    out.append("end")
    for i in range(n):
        out.append(f"def {names[i]}")
        out += ["  " + s for s in gen_def(i)]
        out.append("end")
    return "\n".join(out) + "\n"
