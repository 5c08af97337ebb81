"""The SQL of ``SQLiteState``: the schema, its migrations, and every statement by name.

Every statement takes named parameters; ``:ns`` (the key prefix) and ``:now`` (the clock, read
inside the transaction) are always bound. An entry is fresh while ``expires_at > :now``.
"""

# The cache is a rowid table: its values (~1.3 KB) are larger than a WITHOUT ROWID row keeps in
# its own b-tree page, so there every value lived on an overflow page and a 100-key lookup cost
# about four times as much (11 against 3 microseconds a key, measured on 20,000 entries).
CACHE_TABLE = """create table if not exists {name} (ns text, key text, value blob not null,
    expires_at real not null, lead blob, primary key (ns, key))"""
SCHEMA = (
    CACHE_TABLE.format(name="cache")
    + """;
create table if not exists limiters (ns text, name text, tat real not null,
    primary key (ns, name)) without rowid;
create table if not exists counters (ns text, key text, value integer not null,
    expires_at real, primary key (ns, key)) without rowid;
create table if not exists flags (ns text, key text, value blob not null,
    expires_at real not null, primary key (ns, key)) without rowid;
create table if not exists jobs (ns text, job_id text, payload blob not null, result blob,
    owner text, lease_until real not null, created_at real not null, expires_at real not null,
    primary key (ns, job_id)) without rowid;
create table if not exists fetch (ns text, key text, payload blob not null, priority integer not null,
    round integer not null, owner text, lease_until real not null default 0,
    primary key (ns, key)) without rowid;
create table if not exists outcomes (ns text, key text, round integer not null, value blob not null,
    expires_at real not null, primary key (ns, key)) without rowid;
create table if not exists workers (ns text, owner text, expires_at real not null,
    primary key (ns, owner)) without rowid;
create table if not exists meta (name text primary key, value text not null) without rowid;
create index if not exists cache_expiry on cache (ns, expires_at);
create index if not exists jobs_lease on jobs (ns, lease_until) where result is null;
create index if not exists fetch_order on fetch (ns, priority, round);
"""
)

# Files written by earlier releases: a column added since, and the refill queue that the fetch
# queue replaced (its items move over as background work, so a backfill in progress goes on).
MIGRATIONS = {
    "cache_lead": ("cache", "lead", "alter table cache add column lead blob"),
}
OLD_QUEUE = (
    "insert or ignore into fetch (ns, key, payload, priority, round)"
    " select ns, key, payload, :priority, seq from queue",
    "drop table queue",
)
OLD_TABLES = ("drop table if exists claims",)  # claims: replaced by fetch queue leases
# A cache of an earlier release, WITHOUT ROWID, is copied into the rowid table once.
CACHE_TO_ROWID = (
    CACHE_TABLE.format(name="cache_rowid"),
    "insert into cache_rowid select ns, key, value, expires_at, lead from cache",
    "drop table cache",
    "alter table cache_rowid rename to cache",
    "create index if not exists cache_expiry on cache (ns, expires_at)",
)

FRESH = "expires_at > :now"
JOB_HELD = f"ns = :ns and job_id = :id and {FRESH} and result is null"
JOB_HELD += " and (owner = :owner or lease_until <= :now)"  # held by owner, or by nobody
SQL = {
    "cache_set": "insert or replace into cache values (:ns, :key, :value, :now + :ttl, :lead)",
    "cache_count": f"select count(*) from cache where ns = :ns and {FRESH}",
    "cache_scan": f"select key, value, lead, expires_at from cache where ns = :ns and {FRESH}"
    " and key > :after order by key limit :limit",
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
    "job_finish": f"update jobs set result = :result, payload = coalesce(:payload, payload) where {JOB_HELD}",
    "jobs_orphaned": f"select job_id from jobs where ns = :ns and result is null and {FRESH}"
    " and lease_until <= :now order by lease_until limit :limit",
    "jobs_running": f"select count(*) from jobs where ns = :ns and result is null and {FRESH}",
    "fetch_get": "select round, priority from fetch where ns = :ns and key = :key",
    "fetch_add": "insert into fetch (ns, key, payload, priority, round)"
    " values (:ns, :key, :payload, :priority, :round)",
    "fetch_raise": "update fetch set priority = :priority where ns = :ns and key = :key"
    " and priority > :priority",
    "fetch_any_ready": "select 1 from fetch where ns = :ns and lease_until <= :now limit 1",
    "fetch_ready": "select key, payload, round from fetch where ns = :ns and lease_until <= :now"
    " order by priority, round limit :limit",
    "fetch_ready_key": "select key, payload, round from fetch where ns = :ns and key = :key"
    " and lease_until <= :now",
    "fetch_lease": "update fetch set owner = :owner, lease_until = :now + :lease"
    " where ns = :ns and key = :key",
    "fetch_renew": "update fetch set lease_until = :now + :lease where ns = :ns and key = :key"
    " and owner = :owner and lease_until > :now",
    "fetch_release": "update fetch set owner = null, lease_until = 0 where ns = :ns and key = :key"
    " and owner = :owner",
    "fetch_remove": "delete from fetch where ns = :ns and key = :key and round = :round",
    "fetch_depth": "select priority, count(*) from fetch where ns = :ns group by priority",
    "fetch_held": "select 1 from fetch where ns = :ns and key = :key and owner = :owner"
    " and lease_until > :now",
    "outcome_set": "insert or replace into outcomes values (:ns, :key, :round, :value, :now + :ttl)",
    "cache_fresh": f"select 1 from cache where ns = :ns and key = :key and {FRESH}",
    "epoch": "select value from meta where name = 'epoch'",
    "set_epoch": "insert or ignore into meta values ('epoch', :epoch)",
    "heartbeat": "insert or replace into workers values (:ns, :owner, :now + :ttl)",
    "workers_alive": f"select count(*) from workers where ns = :ns and {FRESH}",
    "ping": "insert or replace into meta values ('ping', :now)",
}
# Dead rows that sweep() deletes; a limiter whose tat has passed is the same as an unknown name.
EXPIRING = {"cache": "expires_at", "limiters": "tat", "outcomes": "expires_at", "workers": "expires_at"}
EXPIRING |= {"counters": "expires_at", "flags": "expires_at", "jobs": "expires_at"}
for table, column in EXPIRING.items():
    SQL[f"sweep_{table}"] = f"delete from {table} where ns = :ns and {column} <= :now"
