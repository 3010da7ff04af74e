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
      put <q> <word>      await q.put(word) on bounded queue q (q0: maxsize 1, q1: 2); trace
                          "<task> put <q> <word> -> ok | cancelled" (a cancellation ends the task)
      get <q>             trace "<task> get <q> -> ok <word> | cancelled" (likewise)
      putn <q> <word>     put_nowait: trace "... -> ok | full"
      getn <q>            get_nowait: trace "... -> ok <word> | empty"
      qsize <q>           trace "<task> qsize <q> -> <n>"
      locked <lock> <n>   acquire the Lock (trace "acquire <lock> -> ok | cancelled"), yield n
                          times holding it, trace "release <lock>", release it (also when
                          cancelled meanwhile: `async with` / a lock guard)
      held <sem> <n>      the same with a Semaphore(2): "acquire <sem> ...", "release <sem>"
      pump <k>            forever: yield k times, then for q0 and q1: an empty queue gets an
                          item ("pump putn <q> p<i>"), a full one loses one ("pump getn <q>
                          -> <word>"); so no get or put waits forever
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
import sys


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


async def gather(*futs):
    """asyncio.gather as Python 3.12+ runs it, which asyncfiber follows: children already
    done when gather is called are accounted for at once, so a gather whose outcome is
    already decided (every child done, or a done child failed) completes without
    suspending. Python 3.11 schedules their callbacks with call_soon instead; emulate 3.12
    there. Otherwise the deciding child's completion wakes the caller two loop iterations
    later on every version."""
    if sys.version_info < (3, 12):
        for f in futs:
            if f.done() and (f.cancelled() or f.exception() is not None):
                return f.result()  # raises its exception or CancelledError
        if all(f.done() for f in futs):
            return [f.result() for f in futs]
    return await asyncio.gather(*futs)


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

    prims = {}

    def queue(name):
        if name not in prims:
            prims[name] = asyncio.Queue(int(name[1:]) + 1)
        return prims[name]

    def lock(name):
        if name not in prims:
            prims[name] = asyncio.Lock() if name.startswith("l") else asyncio.Semaphore(2)
        return prims[name]

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
                    rs = await gather(*[tasks[v] for v in st[1:]])
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
            elif op == "put":
                try:
                    await queue(st[1]).put(st[2])
                except asyncio.CancelledError:
                    log(label, f"put {st[1]} {st[2]} -> cancelled")
                    raise
                log(label, f"put {st[1]} {st[2]} -> ok")
            elif op == "get":
                try:
                    v = await queue(st[1]).get()
                except asyncio.CancelledError:
                    log(label, f"get {st[1]} -> cancelled")
                    raise
                log(label, f"get {st[1]} -> ok {v}")
            elif op == "putn":
                try:
                    queue(st[1]).put_nowait(st[2])
                    log(label, f"putn {st[1]} {st[2]} -> ok")
                except asyncio.QueueFull:
                    log(label, f"putn {st[1]} {st[2]} -> full")
            elif op == "getn":
                try:
                    log(label, f"getn {st[1]} -> ok {queue(st[1]).get_nowait()}")
                except asyncio.QueueEmpty:
                    log(label, f"getn {st[1]} -> empty")
            elif op == "qsize":
                log(label, f"qsize {st[1]} -> {queue(st[1]).qsize()}")
            elif op in ("locked", "held"):
                lk = lock(st[1])
                try:
                    await lk.acquire()
                except asyncio.CancelledError:
                    log(label, f"acquire {st[1]} -> cancelled")
                    raise
                try:
                    log(label, f"acquire {st[1]} -> ok")
                    for _ in range(int(st[2])):
                        await asyncio.sleep(0)
                    log(label, f"release {st[1]}")
                finally:
                    lk.release()
            elif op == "pump":
                n = 0
                while True:
                    for _ in range(int(st[1])):
                        await asyncio.sleep(0)
                    for qn in ("q0", "q1"):
                        q = queue(qn)
                        if q.empty():
                            n += 1
                            q.put_nowait(f"p{n}")
                            log(label, f"pump putn {qn} p{n}")
                        elif q.full():
                            log(label, f"pump getn {qn} -> {q.get_nowait()}")
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
            lines.append("spawn p pump")
        for k in range(rng.randint(3, 10)):
            r = rng.random()
            later = [j for j in range(i + 1, n) if spawn_uses[names[j]] < 2]
            if r < (0.45 if name == "main" else 0.25) and later:
                j = rng.choice(later)
                spawn_uses[names[j]] += 1
                v = f"v{len(vars_)}"
                vars_.append(v)
                lines.append(f"spawn {v} {names[j]}")
                if rng.random() < 0.3:  # cancel it while it is likely blocked somewhere
                    lines += ["yield"] * rng.randint(1, 4) + [f"cancel {v}"]
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
            elif r < 0.87:
                lines.append(f"put {rng.choice(queues)} w{i}_{k}")
            elif r < 0.90:
                lines.append(f"get {rng.choice(queues)}")
            elif r < 0.915:
                lines.append(f"putn {rng.choice(queues)} n{i}_{k}")
            elif r < 0.93:
                lines.append(f"getn {rng.choice(queues)}")
            elif r < 0.94:
                lines.append(f"qsize {rng.choice(queues)}")
            elif r < 0.97:
                lines.append(f"locked {rng.choice(locks)} {rng.randint(0, 3)}")
            elif r < 0.98:
                lines.append(f"held s0 {rng.randint(0, 3)}")
            else:
                lines.append(f"log x{k}")
        if name == "main":  # await some children, as a program would
            for v in vars_:
                if rng.random() < 0.8:
                    lines.append(f"await {v}")
        return lines

    queues = ["q0", "q1"]
    locks = ["l0", "l1"]
    setter = ["yield"] * rng.randint(0, 6) + ["set e0"] + ["yield"] * rng.randint(0, 4) + ["set e1"]
    out.append("def setter")
    out += ["  " + s for s in setter]
    out.append("end")
    out += ["def pump", f"  pump {rng.randint(1, 6)}", "end"]
    for i in range(n):
        out.append(f"def {names[i]}")
        out += ["  " + s for s in gen_def(i)]
        out.append("end")
    return "\n".join(out) + "\n"
