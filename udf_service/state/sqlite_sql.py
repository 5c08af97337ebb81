"""The SQL of ``SQLiteState``: the schema, and every statement by name.

Every statement takes named parameters; ``:ns`` (the key prefix) and ``:now`` (``time.time()``,
read inside the transaction) are always bound. An entry is fresh while ``expires_at > :now``.
"""

SCHEMA = """
create table if not exists cache (ns text, key text, value blob not null,
    expires_at real not null, primary key (ns, key)) without rowid;
create table if not exists claims (ns text, key text, owner text not null,
    expires_at real not null, primary key (ns, key)) without rowid;
create table if not exists limiters (ns text, name text, tat real not null,
    primary key (ns, name)) without rowid;
create table if not exists counters (ns text, key text, value integer not null,
    expires_at real, primary key (ns, key)) without rowid;
create table if not exists flags (ns text, key text, value blob not null,
    expires_at real not null, primary key (ns, key)) without rowid;
create table if not exists jobs (ns text, job_id text, payload blob not null, result blob,
    owner text, lease_until real not null, created_at real not null, expires_at real not null,
    primary key (ns, job_id)) without rowid;
create table if not exists queue (seq integer primary key autoincrement, ns text not null,
    key text not null, payload blob not null, owner text, lease_until real not null default 0,
    unique (ns, key));
create index if not exists cache_expiry on cache (ns, expires_at);
create index if not exists jobs_lease on jobs (ns, lease_until) where result is null;
create index if not exists queue_order on queue (ns, seq);
"""

FRESH = "expires_at > :now"
JOB_HELD = f"ns = :ns and job_id = :id and {FRESH} and result is null"
JOB_HELD += " and (owner = :owner or lease_until <= :now)"  # held by owner, or by nobody
SQL = {
    "cache_set": "insert or replace into cache values (:ns, :key, :value, :now + :ttl)",
    "cache_count": f"select count(*) from cache where ns = :ns and {FRESH}",
    "claim": "insert into claims values (:ns, :key, :owner, :now + :ttl)"
    " on conflict (ns, key) do update set owner = :owner, expires_at = excluded.expires_at"
    " where claims.owner = :owner or claims.expires_at <= :now",
    "release": "delete from claims where ns = :ns and key = :key and owner = :owner",
    "claim_holder": f"select owner from claims where ns = :ns and key = :key and {FRESH}",
    "tat": "select max(tat, :now) from limiters where ns = :ns and name = :name",
    "set_tat": "insert or replace into limiters values (:ns, :name, :tat)",
    "counter": "select value, expires_at from counters where ns = :ns and key = :key"
    " and (expires_at is null or expires_at > :now)",
    "set_counter": "insert or replace into counters values (:ns, :key, :value, :expires_at)",
    "flag_set": "insert or replace into flags values (:ns, :key, :value, :now + :ttl)",
    "flag": f"select value, expires_at - :now from flags where ns = :ns and key = :key and {FRESH}",
    "job_expired": "delete from jobs where ns = :ns and job_id = :id and expires_at <= :now",
    "job_create": "insert or ignore into jobs values"
    " (:ns, :id, :payload, null, :owner, :now + :lease, :now, :now + :ttl)",
    "job_get": "select job_id, payload, result, owner, lease_until, created_at from jobs"
    f" where ns = :ns and job_id = :id and {FRESH}",
    "job_lease": f"update jobs set owner = :owner, lease_until = :now + :lease where {JOB_HELD}",
    "job_finish": f"update jobs set result = :result where {JOB_HELD}",
    "jobs_orphaned": f"select job_id from jobs where ns = :ns and result is null and {FRESH}"
    " and lease_until <= :now order by lease_until limit :limit",
    "queue_push": "insert or ignore into queue (ns, key, payload) values (:ns, :key, :payload)",
    "queue_free": "select seq, key, payload from queue where ns = :ns and lease_until <= :now"
    " order by seq limit :limit",
    "queue_lease": "update queue set owner = :owner, lease_until = :now + :lease where seq = :seq",
    "queue_done": "delete from queue where ns = :ns and key = :key",
    "queue_depth": "select count(*) from queue where ns = :ns",
}
# Dead rows that sweep() deletes; a limiter whose tat has passed is the same as an unknown name.
EXPIRING = {"cache": "expires_at", "claims": "expires_at", "limiters": "tat"}
EXPIRING |= {"counters": "expires_at", "flags": "expires_at", "jobs": "expires_at"}
for table, column in EXPIRING.items():
    SQL[f"sweep_{table}"] = f"delete from {table} where ns = :ns and {column} <= :now"
