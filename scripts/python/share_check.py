#!/usr/bin/env python3
"""share_check: confluent-kafka's share consumer (librdkafka, not the Java client) as a second,
independent witness of KIP-932 share-group behaviour on a broker: real Apache Kafka (4.1+) or the
project's reference broker.

    python3 scripts/python/share_check.py BOOTSTRAP [--records N] [--topic T] [--group G]
            [--lock-ms MS] [--timeout-ms MS] [--verbose]

It runs the same round, asserts the same things and prints the same last line as
scripts/java/ShareCheck.java (read that file's header for the full rationale):

  1. Admin: create topic T (1 partition, RF 1; an existing topic is reused) and set group configs on G
     (IncrementalAlterConfigs, resource type GROUP): share.auto.offset.reset=earliest and
     share.record.lock.duration.ms=MS (default 5000; --lock-ms 0 leaves it alone).
  2. A Producer (acks=all, no idempotence) sends N records, key = i, value = "<run id>:<i>".
  3. One ShareConsumer (share.acknowledgement.mode=explicit) polls and acknowledges each record by i:
       first delivery:  i % 10 == 0 -> RELEASE; else i % 7 == 0 -> REJECT; else ACCEPT
       second delivery: (only released records) i % 7 == 0 -> REJECT; else ACCEPT
     with commit_sync after every non-empty poll.
  4. A second consumer in the same group must receive nothing of this run but a sentinel produced
     after step 3.

Assertions: delivered-all, delivery-count (first delivery 1, a released record comes back with 2),
no-redelivery, commit-ok, totals, second-consumer.

Output: progress on stderr; last line on stdout "sharecheck: PASS ..." or
"sharecheck: FAIL <assertion>: ..." or "sharecheck: ERROR ...".
Exit codes: 0 pass, 1 an assertion failed, 2 could not run (usage, missing package, setup failure).
Every blocking call has a timeout; the whole run has --timeout-ms (default 120000).
Needs confluent-kafka (scripts/python/requirements.txt pins the verified version).
"""

import argparse
import sys
import time
import uuid

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
START = time.monotonic()
RUN = uuid.uuid4().hex[:8]


def elapsed_ms():
    return int((time.monotonic() - START) * 1000)


def log(msg):
    print(f"sharecheck: [{elapsed_ms():6d} ms] {msg}", file=sys.stderr, flush=True)


class AssertionFailed(Exception):
    def __init__(self, name, detail):
        super().__init__(detail)
        self.name = name


class SetupFailed(Exception):
    pass


class Check:
    def __init__(self, args, ck):
        self.ck = ck
        self.bootstrap = args.bootstrap
        self.n = args.records
        self.topic = args.topic or f"sharecheck-{RUN}"
        self.group = args.group or f"sharecheck-{RUN}"
        self.lock_ms = args.lock_ms
        self.timeout_ms = args.timeout_ms
        self.verbose = args.verbose
        self.deadline = START + args.timeout_ms / 1000.0
        self.deliveries = [0] * (self.n + 1)
        self.last = [None] * (self.n + 1)
        self.done = [False] * (self.n + 1)
        self.accepted = self.rejected = self.released = self.redelivered = 0
        self.violations = []

    # ------------------------------------------------------------------------------------ helpers
    def remaining_s(self):
        return max(0.0, self.deadline - time.monotonic())

    def step_s(self):
        """Timeout of one blocking setup step: what is left of the deadline, at most 20 s."""
        r = self.remaining_s()
        if r <= 0:
            raise SetupFailed(f"deadline of {self.timeout_ms} ms passed during setup")
        return min(20.0, r)

    def violation(self, name, detail):
        self.violations.append((name, detail))

    def first_violation(self):
        name, detail = self.violations[0]
        more = f" (+{len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        return AssertionFailed(name, detail + more)

    def index_of(self, msg):
        v = msg.value()
        if v is None:
            return -1
        v = v.decode("utf-8", "replace")
        prefix = RUN + ":"
        if not v.startswith(prefix):
            return -1
        try:
            i = int(v[len(prefix):])
        except ValueError:
            return -1
        return i if 1 <= i <= self.n else -1

    def decide(self, i, delivery):
        A = self.ck.AcknowledgeType
        if delivery == 1:
            if i % 10 == 0:
                return A.RELEASE
            if i % 7 == 0:
                return A.REJECT
            return A.ACCEPT
        return A.REJECT if i % 7 == 0 else A.ACCEPT

    def remaining(self):
        return sum(1 for i in range(1, self.n + 1) if not self.done[i])

    def missing(self):
        out = [f"{i}(delivered {self.deliveries[i]}x)" for i in range(1, self.n + 1) if not self.done[i]]
        return ",".join(out[:20])

    def common(self):
        return {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": 15000,
            "log_level": 3,
        }

    # -------------------------------------------------------------------------------------- steps
    def setup(self):
        from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                           ConfigResource, NewTopic, ResourceType)
        admin = AdminClient({**self.common(), "client.id": "sharecheck-admin"})
        futures = admin.create_topics([NewTopic(self.topic, 1, 1)], request_timeout=10)
        try:
            futures[self.topic].result(timeout=self.step_s())
            log(f"created topic {self.topic}")
        except self.ck.KafkaException as e:
            err = e.args[0]
            if err.code() != self.ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise SetupFailed(f"create topic {self.topic}: {err}")
            log(f"topic {self.topic} exists; reusing it")
        except Exception as e:  # concurrent.futures.TimeoutError and friends
            raise SetupFailed(f"create topic {self.topic}: {type(e).__name__}: {e}")
        entries = [ConfigEntry("share.auto.offset.reset", "earliest",
                               incremental_operation=AlterConfigOpType.SET)]
        if self.lock_ms > 0:
            entries.append(ConfigEntry("share.record.lock.duration.ms", str(self.lock_ms),
                                       incremental_operation=AlterConfigOpType.SET))
        res = ConfigResource(ResourceType.GROUP, self.group, incremental_configs=entries)
        try:
            for f in admin.incremental_alter_configs([res], request_timeout=10).values():
                f.result(timeout=self.step_s())
        except Exception as e:
            raise SetupFailed(f"set group configs on {self.group}: {type(e).__name__}: {e}")
        log(f"group {self.group}: share.auto.offset.reset=earliest"
            + (f", share.record.lock.duration.ms={self.lock_ms}" if self.lock_ms > 0 else ""))

    def producer(self):
        return self.ck.Producer({
            **self.common(),
            "client.id": "sharecheck-producer",
            "acks": "all",
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 1,
            "retries": 0,
            "linger.ms": 5,
            "message.timeout.ms": 30000,
            "request.timeout.ms": 15000,
        })

    def produce_all(self, values):
        p = self.producer()
        results = [None] * len(values)

        def done(idx):
            def cb(err, msg):
                results[idx] = err if err is not None else msg.offset()
            return cb

        for idx, (key, value) in enumerate(values):
            p.produce(self.topic, key=key, value=value, on_delivery=done(idx))
            p.poll(0)
        left = p.flush(self.step_s())
        if left:
            raise SetupFailed(f"produce: {left} record(s) not delivered within the step timeout")
        for idx, r in enumerate(results):
            if not isinstance(r, int):
                raise SetupFailed(f"produce record {idx + 1}: {r}")
        return results

    def produce(self):
        offsets = self.produce_all([(str(i), f"{RUN}:{i}") for i in range(1, self.n + 1)])
        log(f"produced {self.n} records at offsets {offsets[0]}..{offsets[-1]}")

    def consumer(self, client_id):
        c = self.ck.ShareConsumer({
            **self.common(),
            "group.id": self.group,
            "client.id": client_id,
            "share.acknowledgement.mode": "explicit",
        })
        c.subscribe([self.topic])
        return c

    def commit(self, c, polls):
        timeout = max(0.001, min(20.0, self.remaining_s()))
        try:
            res = c.commit_sync(timeout)
        except self.ck.KafkaException as e:
            raise AssertionFailed("commit-ok", f"commit_sync after poll {polls} failed: {e}")
        for tp, err in (res or {}).items():
            if err is not None:
                why = str(err)
                hint = (f" (also what an ack gets after the {self.lock_ms} ms acquisition lock expired,"
                        " e.g. if this client stalled)") if "INVALID_RECORD_STATE" in why.upper() else ""
                raise AssertionFailed("commit-ok", f"commit_sync after poll {polls} failed for "
                                      f"{tp.topic}[{tp.partition}]: {why}{hint}")

    def consume(self):
        A = self.ck.AcknowledgeType
        c = self.consumer("sharecheck-1")
        polls = foreign = 0
        first_at = None
        try:
            while self.remaining() > 0:
                if self.remaining_s() <= 0:
                    what = "no record was ever delivered" if first_at is None else f"missing: {self.missing()}"
                    raise AssertionFailed("delivered-all", f"{self.remaining()} of {self.n} records not "
                                          f"delivered+acknowledged before the deadline ({polls} polls; {what})")
                msgs = c.poll(min(1.0, self.remaining_s()))
                polls += 1
                batch = [m for m in msgs if m.error() is None]
                for m in msgs:
                    if m.error() is not None:
                        log(f"poll error: {m.error()}")
                if not batch:
                    continue
                if first_at is None:
                    first_at = elapsed_ms()
                    log(f"first records after {first_at} ms ({polls} polls)")
                pending = []
                for m in batch:
                    i = self.index_of(m)
                    if i < 0:
                        foreign += 1
                        c.acknowledge(m, A.ACCEPT)
                        continue
                    self.deliveries[i] += 1
                    d = self.deliveries[i]
                    dc = m.delivery_count()
                    if self.done[i]:
                        self.violation("no-redelivery", f"record {i} (offset {m.offset()}) delivered again after "
                                       f"{self.last[i]} with delivery count {dc}")
                    elif dc != d:
                        self.violation("delivery-count", f"record {i} (offset {m.offset()}) delivery #{d} has "
                                       f"delivery count {dc}, expected {d}")
                    if d > 2 and not self.done[i]:
                        self.violation("no-redelivery", f"record {i} delivered {d} times (it is released at most once)")
                    t = A.ACCEPT if self.done[i] else self.decide(i, d)
                    c.acknowledge(m, t)
                    self.last[i] = t
                    if self.verbose:
                        log(f"offset {m.offset()} record {i} delivery {d} count {dc} -> {t}")
                    if d == 2:
                        self.redelivered += 1
                    if t == A.RELEASE:
                        self.released += 1
                    elif not self.done[i]:
                        pending.append(i)
                self.commit(c, polls)
                for i in pending:
                    self.done[i] = True
                    if self.last[i] == A.ACCEPT:
                        self.accepted += 1
                    else:
                        self.rejected += 1
                if self.violations:
                    break
        finally:
            close_quietly(c)
        if foreign:
            log(f"ignored {foreign} records that are not from this run (accepted them)")
        log(f"first consumer: {self.accepted} accepted, {self.rejected} rejected, {self.released} released, "
            f"{self.redelivered} redelivered, {polls} polls, {elapsed_ms()} ms")
        if self.violations:
            raise self.first_violation()

    def second_consumer(self):
        A = self.ck.AcknowledgeType
        sentinel = f"{RUN}:sentinel"
        self.produce_all([("sentinel", sentinel)])
        c = self.consumer("sharecheck-2")
        saw = False
        polls = 0
        quiet_until = None  # after the sentinel: one more second of polling
        try:
            while quiet_until is None or time.monotonic() < quiet_until:
                if self.remaining_s() <= 0:
                    raise AssertionFailed("second-consumer", "the sentinel produced after the run was not "
                                          f"delivered to a second consumer before the deadline ({polls} polls)")
                msgs = [m for m in c.poll(min(0.5, self.remaining_s())) if m.error() is None]
                polls += 1
                for m in msgs:
                    c.acknowledge(m, A.ACCEPT)
                    v = m.value().decode("utf-8", "replace") if m.value() is not None else None
                    if v == sentinel:
                        saw = True
                        quiet_until = time.monotonic() + 1.0
                    elif self.index_of(m) > 0:
                        self.violation("second-consumer", f"second consumer got record {self.index_of(m)} "
                                       f"(offset {m.offset()}, delivery count {m.delivery_count()})")
                if msgs:
                    self.commit(c, polls)
        finally:
            close_quietly(c)
        if self.violations:
            raise self.first_violation()
        assert saw
        log(f"second consumer: only the sentinel ({polls} polls)")

    def check_totals(self):
        n = self.n
        expect_rejected = sum(1 for i in range(1, n + 1) if i % 7 == 0)
        expect_released = n // 10
        if self.accepted + self.rejected != n:
            raise AssertionFailed("totals", f"accepted {self.accepted} + rejected {self.rejected} != {n}")
        if (self.rejected, self.released, self.redelivered) != (expect_rejected, expect_released, expect_released):
            raise AssertionFailed("totals", f"rejected {self.rejected} (expected {expect_rejected}), released "
                                  f"{self.released} (expected {expect_released}), redelivered {self.redelivered} "
                                  f"(expected {expect_released})")
        for i in range(1, n + 1):
            expect = 2 if i % 10 == 0 else 1
            if self.deliveries[i] != expect:
                raise AssertionFailed("totals", f"record {i} delivered {self.deliveries[i]} times, expected {expect}")


def ck_version(ck):
    """confluent-kafka's version string (version() is a string in 2.16, a tuple in older releases)."""
    v = ck.version()
    return v[0] if isinstance(v, tuple) else v


def close_quietly(c):
    try:
        c.close()
    except Exception as e:  # a failed close must not hide the verdict
        log(f"close: {type(e).__name__}: {e}")


def parse(argv):
    p = argparse.ArgumentParser(prog="share_check.py", add_help=True)
    p.add_argument("bootstrap")
    p.add_argument("--records", type=int, default=100)
    p.add_argument("--topic")
    p.add_argument("--group")
    p.add_argument("--lock-ms", type=int, default=5000)
    p.add_argument("--timeout-ms", type=int, default=120000)
    p.add_argument("--verbose", action="store_true")

    class Usage(Exception):
        pass

    def error(message):
        raise Usage(message)

    p.error = error
    try:
        args = p.parse_args(argv)
    except Usage as e:
        print(f"sharecheck: {e}", file=sys.stderr)
        print("usage: share_check.py BOOTSTRAP [--records N] [--topic T] [--group G] [--lock-ms MS] "
              "[--timeout-ms MS] [--verbose]", file=sys.stderr)
        print(f"sharecheck: ERROR usage: {e}")
        sys.exit(EXIT_ERROR)
    if args.records < 1 or args.lock_ms < 0 or args.timeout_ms < 1:
        print("sharecheck: ERROR usage: --records must be >= 1, --lock-ms >= 0, --timeout-ms >= 1")
        sys.exit(EXIT_ERROR)
    return args


def main(argv):
    args = parse(argv)
    try:
        import confluent_kafka as ck
    except ImportError as e:
        print(f"sharecheck: ERROR confluent-kafka is not installed ({e}); "
              "pip install -r scripts/python/requirements.txt")
        return EXIT_ERROR
    if not hasattr(ck, "ShareConsumer"):
        print(f"sharecheck: ERROR confluent-kafka {ck_version(ck)} has no ShareConsumer (needs 2.13+)")
        return EXIT_ERROR
    check = Check(args, ck)
    log(f"run {RUN}: confluent-kafka {ck_version(ck)} (librdkafka {ck.libversion()[0]}) bootstrap={check.bootstrap} "
        f"topic={check.topic} group={check.group} records={check.n} lock-ms={check.lock_ms} "
        f"timeout-ms={check.timeout_ms}")
    try:
        check.setup()
        check.produce()
        check.consume()
        check.second_consumer()
        check.check_totals()
    except AssertionFailed as e:
        for name, detail in check.violations:
            log(f"violation: {name}: {detail}")
        print(f"sharecheck: FAIL {e.name}: {e} (topic={check.topic} group={check.group} elapsed_ms={elapsed_ms()})")
        return EXIT_FAIL
    except SetupFailed as e:
        print(f"sharecheck: ERROR {e} (elapsed_ms={elapsed_ms()})")
        return EXIT_ERROR
    except Exception as e:
        print(f"sharecheck: ERROR unexpected {type(e).__name__}: {e} (elapsed_ms={elapsed_ms()})")
        if args.verbose:
            import traceback
            traceback.print_exc()
        return EXIT_ERROR
    print(f"sharecheck: PASS records={check.n} accepted={check.accepted} rejected={check.rejected} "
          f"released={check.released} redelivered={check.redelivered} topic={check.topic} group={check.group} "
          f"elapsed_ms={elapsed_ms()} client=confluent-kafka-{ck_version(ck)}")
    return EXIT_PASS


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
