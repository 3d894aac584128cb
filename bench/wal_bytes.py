#!/usr/bin/env python3
"""WAL bytes per job for collie's write pattern, in SQLite alone.

Not part of `make bench`: a model used to decide where the bytes a job
costs come from (bench/README.md). It replays the server's commits on a
copy of its schema: groups of GROUP creates (a 1 KB message each), every
32 jobs a pipeline batch (status, result, an event each), every 64 an
attempt-record chunk, and counts the WAL frames each kind of commit adds.

usage: wal_bytes.py [one|split] [PAGE_SIZE=4096] [GROUP=12]
  one:   the message in the job's row (collie's schema)
  split: the message in a table of its own
"""
import os
import sqlite3
import sys
import tempfile

layout = sys.argv[1] if len(sys.argv) > 1 else "one"
page = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
group = int(sys.argv[3]) if len(sys.argv) > 3 else 12
N = 24000

path = os.path.join(tempfile.mkdtemp(), "model.db")
db = sqlite3.connect(path, isolation_level=None)
db.execute(f"PRAGMA page_size={page}")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA wal_autocheckpoint=0")
texts = "message TEXT, message_input TEXT, message_output TEXT"
db.executescript(f"""
CREATE TABLE jobs (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
  project_id INTEGER NOT NULL, status INTEGER NOT NULL, mode INTEGER NOT NULL,
  {texts + ',' if layout == 'one' else ''}
  webhook_url TEXT NOT NULL, webhook_secret TEXT NOT NULL, metadata TEXT,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  completed_at INTEGER NOT NULL DEFAULT 0, filtered_input TEXT, filtered_output TEXT,
  inbound_result TEXT, outbound_result TEXT, error TEXT,
  filtered_same INTEGER NOT NULL DEFAULT 0);
CREATE INDEX jobs_by_project ON jobs(project_id);
CREATE INDEX jobs_by_expiry ON jobs(expires_at);
{f'CREATE TABLE job_texts (seq INTEGER PRIMARY KEY, {texts});' if layout == 'split' else ''}
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
  job_id TEXT NOT NULL, type TEXT NOT NULL, status_after INTEGER NOT NULL,
  created_at INTEGER NOT NULL, status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL, lease_until INTEGER NOT NULL DEFAULT 0,
  response_code INTEGER NOT NULL DEFAULT 0, delivered_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT);
CREATE INDEX events_by_job ON events(job_id, seq);
CREATE INDEX events_due ON events(next_attempt_at) WHERE status IN (0, 1, 3);
CREATE TABLE attempts (id INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL,
  started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL, status_code INTEGER NOT NULL,
  error TEXT);
CREATE INDEX attempts_by_event ON attempts(event_seq);
""")


def frames():
    return (os.path.getsize(path + "-wal") - 32) // (page + 24)


by_kind = {"create": 0, "step": 0, "record": 0}


def commit(kind):
    before = frames()
    db.execute("COMMIT")
    by_kind[kind] += frames() - before


message = "The quick brown fox jumps over the lazy dog. " * 23
result = '{"decision":"pass","triggered_rules":[],"redactions":[],' \
         '"evaluated_at":"2026-11-23T01:14:15.123Z","policy_version":1}'
t = 1763860000000
created, events = [], []
stepped = recorded = 0
while len(created) < N:
    db.execute("BEGIN")
    for _ in range(group):
        t += 1
        job_id = "job_%013d%013d" % (t, len(created))
        cols = "id, project_id, status, mode, webhook_url, webhook_secret, created_at, expires_at"
        vals = (job_id, 1, 0, 2, "http://127.0.0.1:19901/hook", "s" * 90, t, t + 3600000)
        if layout == "one":
            db.execute(f"INSERT INTO jobs({cols}, message_input) VALUES (?,?,?,?,?,?,?,?,?)",
                       vals + (message,))
        else:
            seq = db.execute(f"INSERT INTO jobs({cols}) VALUES (?,?,?,?,?,?,?,?)", vals).lastrowid
            db.execute("INSERT INTO job_texts(seq, message_input) VALUES (?, ?)", (seq, message))
        created.append(job_id)
    commit("create")
    while len(created) - stepped >= 32:  # the pipeline lags the creates
        db.execute("BEGIN")
        for job_id in created[stepped:stepped + 32]:
            db.execute("UPDATE jobs SET status = 4, completed_at = ?, inbound_result = ?,"
                       " filtered_same = 1 WHERE id = ?", (t, result, job_id))
            events.append(db.execute(
                "INSERT INTO events(event_id, job_id, type, status_after, created_at, status,"
                " next_attempt_at) VALUES (?,?,?,?,?,?,?)",
                ("msg_" + job_id, job_id, "job.inbound_complete", 4, t, 0, 2**63 - 1)).lastrowid)
        stepped += 32
        commit("step")
    while len(events) - recorded >= 64:
        db.execute("BEGIN")
        for seq in events[recorded:recorded + 64]:
            db.execute("INSERT INTO attempts(event_seq, started_at, duration_ms, status_code)"
                       " VALUES (?,?,?,?)", (seq, t, 1, 200))
            db.execute("UPDATE events SET status = 2, attempts = attempts + 1,"
                       " response_code = 200, lease_until = 0, delivered_at = ?,"
                       " next_attempt_at = ? WHERE seq = ?", (t, t, seq))
        recorded += 64
        commit("record")

per_job = {k: round(v * (page + 24) / len(created)) for k, v in by_kind.items()}
print(f"layout {layout}, {page}-byte pages, groups of {group}: "
      f"{sum(per_job.values())} WAL bytes per job "
      f"(creates {per_job['create']}, steps {per_job['step']}, records {per_job['record']})")
