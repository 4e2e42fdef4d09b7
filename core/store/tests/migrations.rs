//! The two migration dialects give one schema, and a unique violation names one constraint
//! on both engines.
//!
//! `migrations/sqlite/` and `migrations/postgres/` are applied to a fresh database each and
//! read back from the engines' catalogs (SQLite: `sqlite_master` and the `pragma_*` table
//! functions; PostgreSQL: `information_schema` and `pg_catalog`), then compared: the tables,
//! their columns, each column's type (through [`TYPES`]) and nullability, the primary keys,
//! the unique constraints, and the indexes by name (table, keys in order with their
//! direction, unique or not, the partial index's condition).
//!
//! What is normalised, because the engines differ and the schema does not:
//! - types, through the equivalence table [`TYPES`] (SQLite keeps dates and timestamps as
//!   `TEXT`, every integer as `INTEGER`);
//! - an `INTEGER PRIMARY KEY` is SQLite's rowid and can never be NULL, although
//!   `pragma_table_info` reports it nullable;
//! - the indexes that back a constraint are compared as constraints, not by name (SQLite
//!   calls them `sqlite_autoindex_<table>_<n>`);
//! - PostgreSQL prints expressions its own way ([`normalised`]): casts on constants
//!   (`0::bigint`), quoted keywords (`"position"`), `= ANY (ARRAY[…])` for `IN (…)`, case
//!   and spacing.
//!
//! Not compared: defaults, CHECK constraints, foreign keys and triggers (their text differs
//! by dialect; the store tests exercise them on both engines).

mod common;

use common::{conflict, execute, refused};
use keel_store::Db;
use keel_testkit::{TestDb, store_test};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which PostgreSQL types a SQLite declared type stands for. SQLite stores dates and
/// timestamps as text, and every integer in up to 8 bytes.
const TYPES: &[(&str, &[&str])] = &[
    ("INTEGER", &["bigint", "integer"]),
    ("BIGINT", &["bigint"]),
    ("TEXT", &["text", "date", "timestamp with time zone"]),
    ("BOOLEAN", &["boolean"]),
    ("BLOB", &["bytea"]),
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    ty: String,
    not_null: bool,
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let null = if self.not_null { "NOT NULL" } else { "NULL" };
        write!(f, "{} {null}", self.ty)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Index {
    table: String,
    unique: bool,
    /// Column names or expressions, normalised, with ` desc` when descending.
    keys: Vec<String>,
    /// A partial index's condition, normalised.
    predicate: Option<String>,
}

impl fmt::Display for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unique = if self.unique { "UNIQUE " } else { "" };
        write!(f, "{unique}ON {} ({})", self.table, self.keys.join(", "))?;
        if let Some(p) = &self.predicate {
            write!(f, " WHERE {p}")?;
        }
        Ok(())
    }
}

/// One engine's schema as its catalog reports it.
#[derive(Debug, Default)]
struct Schema {
    /// Table -> column -> its type and nullability.
    tables: BTreeMap<String, BTreeMap<String, Column>>,
    /// Table -> its primary key's columns in order.
    primary_keys: BTreeMap<String, Vec<String>>,
    /// (table, columns in order) of each UNIQUE constraint -> its name (PostgreSQL; SQLite
    /// has only `sqlite_autoindex_…`).
    unique_constraints: BTreeMap<(String, Vec<String>), String>,
    /// The indexes created by CREATE INDEX, by name.
    indexes: BTreeMap<String, Index>,
}

impl Schema {
    async fn read(db: &Db) -> Schema {
        match db {
            Db::Sqlite { readers, .. } => sqlite_schema(readers).await,
            Db::Postgres(pool) => postgres_schema(pool).await,
        }
    }

    /// Every unique key with the name PostgreSQL reports for it: primary keys, UNIQUE
    /// constraints and unique indexes, as (name, table, keys).
    fn unique_keys(&self) -> Vec<(String, String, Vec<String>)> {
        let mut keys: Vec<_> = self
            .primary_keys
            .iter()
            .map(|(t, c)| (format!("{t}_pkey"), t.clone(), c.clone()))
            .collect();
        keys.extend(
            self.unique_constraints
                .iter()
                .map(|((t, c), name)| (name.clone(), t.clone(), c.clone())),
        );
        keys.extend(
            self.indexes
                .iter()
                .filter(|(_, i)| i.unique)
                .map(|(name, i)| (name.clone(), i.table.clone(), i.keys.clone())),
        );
        keys
    }
}

// ----------------------------------------------------------------------------------------
// SQLite's catalog.
// ----------------------------------------------------------------------------------------

async fn sqlite_schema(pool: &sqlx::SqlitePool) -> Schema {
    let mut schema = Schema::default();
    let columns: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT m.name, p.name, p.type, p.\"notnull\", p.pk \
         FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND m.name <> '_sqlx_migrations' \
         ORDER BY m.name, p.pk",
    )
    .fetch_all(pool)
    .await
    .expect("read SQLite's columns");
    let mut pk_counts: BTreeMap<String, usize> = BTreeMap::new();
    for (table, _, _, _, pk) in &columns {
        if *pk > 0 {
            *pk_counts.entry(table.clone()).or_default() += 1;
        }
    }
    for (table, column, ty, not_null, pk) in columns {
        // An INTEGER PRIMARY KEY (the only key column, declared exactly INTEGER) is the
        // rowid: never NULL, whatever pragma_table_info says.
        let rowid =
            pk == 1 && pk_counts.get(&table) == Some(&1) && ty.eq_ignore_ascii_case("INTEGER");
        if pk > 0 {
            schema
                .primary_keys
                .entry(table.clone())
                .or_default()
                .push(column.clone());
        }
        schema.tables.entry(table).or_default().insert(
            column,
            Column {
                ty,
                not_null: not_null == 1 || rowid,
            },
        );
    }

    let indexes: Vec<(String, String, bool, String, Option<String>)> = sqlx::query_as(
        "SELECT m.name, l.name, l.\"unique\", l.origin, i.sql \
         FROM sqlite_master m JOIN pragma_index_list(m.name) l \
         LEFT JOIN sqlite_master i ON i.type = 'index' AND i.name = l.name \
         WHERE m.type = 'table' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("read SQLite's indexes");
    for (table, name, unique, origin, sql) in indexes {
        // A key's name is NULL when it is an expression.
        let keys: Vec<(Option<String>, bool)> = sqlx::query_as(
            "SELECT name, \"desc\" FROM pragma_index_xinfo($1) WHERE key = 1 ORDER BY seqno",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .expect("read an index's keys");
        let (written_keys, predicate) = sql.as_deref().map(index_sql_parts).unwrap_or_default();
        let keys: Vec<String> = keys
            .into_iter()
            .enumerate()
            .map(|(n, (column, desc))| {
                let key = match column {
                    Some(c) => c,
                    // An expression: its text as the migration wrote it.
                    None => written_keys.get(n).cloned().unwrap_or_else(|| "?".into()),
                };
                let key = normalised(&key);
                if desc { format!("{key} desc") } else { key }
            })
            .collect();
        match origin.as_str() {
            // Primary keys were read from pragma_table_info.
            "pk" => {}
            "u" => {
                schema.unique_constraints.insert((table, keys), name);
            }
            _ => {
                schema.indexes.insert(
                    name,
                    Index {
                        table,
                        unique,
                        keys,
                        predicate: predicate.map(|p| normalised(&p)),
                    },
                );
            }
        }
    }
    schema
}

/// The keys (as written) and the WHERE condition of a `CREATE INDEX` statement.
fn index_sql_parts(sql: &str) -> (Vec<String>, Option<String>) {
    let upper = sql.to_ascii_uppercase();
    let Some(on) = upper.find(" ON ") else {
        return (Vec::new(), None);
    };
    let Some(open) = sql[on..].find('(').map(|i| on + i) else {
        return (Vec::new(), None);
    };
    let mut depth = 0;
    let mut keys = Vec::new();
    let mut start = open + 1;
    let mut close = sql.len();
    for (i, c) in sql.char_indices().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    keys.push(sql[start..i].trim().to_string());
                    close = i;
                    break;
                }
            }
            ',' if depth == 1 => {
                keys.push(sql[start..i].trim().to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    let rest = sql[(close + 1).min(sql.len())..].trim();
    let predicate = rest
        .get(..5)
        .filter(|w| w.eq_ignore_ascii_case("WHERE"))
        .map(|_| rest[5..].trim().to_string());
    (keys, predicate)
}

// ----------------------------------------------------------------------------------------
// PostgreSQL's catalog (the test's own schema: the search path's first).
// ----------------------------------------------------------------------------------------

async fn postgres_schema(pool: &sqlx::PgPool) -> Schema {
    let mut schema = Schema::default();
    let columns: Vec<(String, String, String, bool)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable = 'NO' \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
           AND c.table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("read PostgreSQL's columns");
    for (table, column, ty, not_null) in columns {
        schema
            .tables
            .entry(table)
            .or_default()
            .insert(column, Column { ty, not_null });
    }

    let constraints: Vec<(String, String, String, Vec<String>)> = sqlx::query_as(
        "SELECT con.contype::text, con.conname::text, t.relname::text, \
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(attnum, n) \
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                      ORDER BY k.n) \
         FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid \
         WHERE con.connamespace = current_schema()::regnamespace AND con.contype IN ('p', 'u') \
           AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .expect("read PostgreSQL's constraints");
    for (kind, name, table, columns) in constraints {
        if kind == "p" {
            assert_eq!(
                name,
                format!("{table}_pkey"),
                "PostgreSQL's primary key name"
            );
            schema.primary_keys.insert(table, columns);
        } else {
            schema.unique_constraints.insert((table, columns), name);
        }
    }

    /// (index, table, unique, keys, condition).
    type IndexRow = (String, String, bool, Vec<String>, Option<String>);
    let indexes: Vec<IndexRow> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, x.indisunique, \
                ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) \
                             || CASE WHEN x.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END \
                      FROM generate_series(1, x.indnkeyatts) k ORDER BY k), \
                pg_get_expr(x.indpred, x.indrelid, true) \
         FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid \
         JOIN pg_class t ON t.oid = x.indrelid \
         WHERE t.relnamespace = current_schema()::regnamespace \
           AND t.relname <> '_sqlx_migrations' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)",
    )
    .fetch_all(pool)
    .await
    .expect("read PostgreSQL's indexes");
    for (name, table, unique, keys, predicate) in indexes {
        schema.indexes.insert(
            name,
            Index {
                table,
                unique,
                keys: keys
                    .iter()
                    .map(|k| match k.strip_suffix(" DESC") {
                        Some(key) => format!("{} desc", normalised(key)),
                        None => normalised(k),
                    })
                    .collect(),
                predicate: predicate.map(|p| normalised(&p)),
            },
        );
    }
    schema
}

/// An expression as both engines' texts of it compare: PostgreSQL's casts on constants
/// (`0::bigint`, `'x'::text`) and quotes around keywords (`"position"`) dropped, its
/// `= ANY (ARRAY[a, b])` read as `IN (a, b)`, one pair of outer parentheses dropped, then
/// lowercased with no spaces (`COALESCE(reseller_id, 0)` and `COALESCE(reseller_id,
/// 0::bigint)` both become `coalesce(reseller_id,0)`).
fn normalised(expression: &str) -> String {
    let mut out = String::new();
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                while chars
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
                {
                    chars.next();
                }
            }
            '"' => {}
            c if c.is_whitespace() => {}
            c => out.extend(c.to_lowercase()),
        }
    }
    let mut out = out.replace("=any(array[", "in(").replace("])", ")");
    if out.starts_with('(') && out.ends_with(')') && wraps_all(&out) {
        out = out[1..out.len() - 1].to_string();
    }
    out
}

/// Whether the first parenthesis closes at the end.
fn wraps_all(text: &str) -> bool {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i == text.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

// ----------------------------------------------------------------------------------------
// The comparison.
// ----------------------------------------------------------------------------------------

fn same_type(sqlite: &str, postgres: &str) -> bool {
    TYPES
        .iter()
        .any(|(s, pg)| s.eq_ignore_ascii_case(sqlite) && pg.contains(&postgres))
}

fn keys(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}

/// Every difference, one line each, naming the table, column or index and both engines'
/// versions of it.
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let tables: BTreeSet<&String> = sqlite.tables.keys().chain(postgres.tables.keys()).collect();
    for table in tables {
        let (s, p) = match (sqlite.tables.get(table), postgres.tables.get(table)) {
            (Some(s), Some(p)) => (s, p),
            (s, p) => {
                out.push(format!(
                    "table {table}: SQLite {}, PostgreSQL {}",
                    if s.is_some() { "has it" } else { "none" },
                    if p.is_some() { "has it" } else { "none" },
                ));
                continue;
            }
        };
        let columns: BTreeSet<&String> = s.keys().chain(p.keys()).collect();
        for column in columns {
            match (s.get(column), p.get(column)) {
                (Some(sc), Some(pc)) => {
                    if sc.not_null != pc.not_null || !same_type(&sc.ty, &pc.ty) {
                        out.push(format!(
                            "column {table}.{column}: SQLite {sc}, PostgreSQL {pc}"
                        ));
                    }
                }
                (sc, pc) => out.push(format!(
                    "column {table}.{column}: SQLite {}, PostgreSQL {}",
                    sc.map_or("none".into(), |c| c.to_string()),
                    pc.map_or("none".into(), |c| c.to_string()),
                )),
            }
        }
    }

    let tables: BTreeSet<&String> = sqlite
        .primary_keys
        .keys()
        .chain(postgres.primary_keys.keys())
        .collect();
    for table in tables {
        let (s, p) = (
            sqlite.primary_keys.get(table),
            postgres.primary_keys.get(table),
        );
        if s != p {
            out.push(format!(
                "primary key of {table}: SQLite {}, PostgreSQL {}",
                s.map_or("none".into(), |c| keys(c)),
                p.map_or("none".into(), |c| keys(c)),
            ));
        }
    }

    let uniques: BTreeSet<&(String, Vec<String>)> = sqlite
        .unique_constraints
        .keys()
        .chain(postgres.unique_constraints.keys())
        .collect();
    for key @ (table, columns) in uniques {
        let (s, p) = (
            sqlite.unique_constraints.get(key),
            postgres.unique_constraints.get(key),
        );
        if s.is_none() || p.is_none() {
            out.push(format!(
                "unique constraint on {table} {}: SQLite {}, PostgreSQL {}",
                keys(columns),
                s.map_or("none", |n| n.as_str()),
                p.map_or("none", |n| n.as_str()),
            ));
        }
    }

    let names: BTreeSet<&String> = sqlite
        .indexes
        .keys()
        .chain(postgres.indexes.keys())
        .collect();
    for name in names {
        let (s, p) = (sqlite.indexes.get(name), postgres.indexes.get(name));
        if s != p {
            out.push(format!(
                "index {name}: SQLite {}, PostgreSQL {}",
                s.map_or("none".into(), |i| i.to_string()),
                p.map_or("none".into(), |i| i.to_string()),
            ));
        }
    }
    out
}

async fn both_schemas() -> (Schema, Schema) {
    let sqlite = TestDb::sqlite().await;
    let postgres = TestDb::postgres().await;
    let schemas = (
        Schema::read(&sqlite.db).await,
        Schema::read(&postgres.db).await,
    );
    sqlite.finish().await;
    postgres.finish().await;
    schemas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_and_postgresql_migrations_give_one_schema() {
    let (sqlite, postgres) = both_schemas().await;
    // The catalogs were read: a query that found nothing would make every check pass.
    for (engine, schema) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        assert!(
            schema.tables.contains_key("invoices")
                && schema.indexes.contains_key("clients_owner_email_key")
                && schema.primary_keys.contains_key("plugin_kv"),
            "{engine}'s catalog read back empty: {schema:#?}"
        );
    }
    let differences = differences(&sqlite, &postgres);
    assert!(
        differences.is_empty(),
        "the migrations of the two engines differ:\n  {}",
        differences.join("\n  ")
    );
}

const AT: &str = "'2024-01-01T00:00:00Z'";

store_test!(
    /// job_schedules.name, a text primary key, took NULL on SQLite until migration 0009
    /// (SQLite makes only an INTEGER PRIMARY KEY NOT NULL by itself).
    async fn a_schedule_without_a_name_is_refused_on_both_engines(t) {
        let message = refused(
            &t.db,
            &format!(
                "INSERT INTO job_schedules (name, cron, timezone, next_slot, updated_at) \
                 VALUES (NULL, '0 3 * * *', 'UTC', {AT}, {AT})"
            ),
        )
        .await;
        assert!(
            message.to_lowercase().contains("null"),
            "a schedule without a name: {message}"
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unique_key_postgresql_reports_is_named_the_same_on_sqlite() {
    let (sqlite, postgres) = both_schemas().await;
    let mut wrong = Vec::new();
    let postgres_keys = postgres.unique_keys();
    assert!(postgres_keys.len() > 40, "{postgres_keys:#?}");
    for (name, table, columns) in &postgres_keys {
        // SQLite's message lists a key's columns without their direction.
        let columns: Vec<&str> = columns
            .iter()
            .map(|c| c.trim_end_matches(" desc"))
            .collect();
        let on_expressions = columns
            .iter()
            .any(|c| !c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if on_expressions {
            // SQLite names an index on expressions itself: it must be there, unique.
            let message = format!("UNIQUE constraint failed: index '{name}'");
            let reported = keel_store::error::sqlite_constraint(&message);
            let on_sqlite = sqlite.indexes.get(name).filter(|i| i.unique);
            if on_sqlite.is_none() || reported != *name {
                wrong.push(format!(
                    "{name} on {table} ({}): PostgreSQL reports {name}, SQLite has {}",
                    columns.join(", "),
                    on_sqlite.map_or("no unique index of that name".into(), |i| i.to_string()),
                ));
            }
        } else {
            // SQLite lists the columns, which keel-store maps back to a name.
            let listed: Vec<String> = columns.iter().map(|c| format!("{table}.{c}")).collect();
            let message = format!("UNIQUE constraint failed: {}", listed.join(", "));
            let reported = keel_store::error::sqlite_constraint(&message);
            if reported != *name {
                wrong.push(format!(
                    "unique key on {table} ({}): PostgreSQL reports {name}, SQLite {reported}",
                    columns.join(", ")
                ));
            }
        }
    }
    // And the other way: every key read from the SQLite migrations is one PostgreSQL has,
    // under that name.
    for u in keel_store::constraints::unique() {
        let found = postgres_keys.iter().find(|(name, _, _)| *name == u.name);
        let matches = found.is_some_and(|(_, table, columns)| {
            *table == u.table
                && (u.on_expressions
                    || columns
                        .iter()
                        .map(|c| c.trim_end_matches(" desc"))
                        .eq(u.columns.iter().map(String::as_str)))
        });
        if !matches {
            wrong.push(format!(
                "{} on {} {} (SQLite's migrations): PostgreSQL has {}",
                u.name,
                u.table,
                keys(&u.columns),
                found.map_or("no unique key of that name".into(), |(_, t, c)| format!(
                    "it on {t} {}",
                    keys(c)
                )),
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "unique keys named differently on the two engines:\n  {}",
        wrong.join("\n  ")
    );
}

store_test!(
    /// A violating insert of each kind of unique key (a rowid, a composite primary key, a
    /// text primary key, a table's UNIQUE, an index on columns, an index on an expression)
    /// names PostgreSQL's constraint on both engines.
    async fn a_violation_names_the_same_constraint_on_both_engines(t) {
        let db = &t.db;
        let cases = [
            (
                format!("INSERT INTO resellers (id, name, created_at) VALUES (7, 'R', {AT})"),
                "resellers_pkey",
            ),
            (
                format!(
                    "INSERT INTO plugin_kv (plugin_id, key, value, updated_at) VALUES ('p', 'k', '', {AT})"
                ),
                "plugin_kv_pkey",
            ),
            (
                format!(
                    "INSERT INTO job_schedules (name, cron, timezone, next_slot, updated_at) \
                     VALUES ('nightly', '0 3 * * *', 'UTC', {AT}, {AT})"
                ),
                "job_schedules_pkey",
            ),
            (
                format!(
                    "INSERT INTO jobs (kind, payload, unique_key, run_at, created_at, updated_at) \
                     VALUES ('k', '{{}}', 'once', {AT}, {AT}, {AT})"
                ),
                "jobs_unique_key",
            ),
            (
                format!(
                    "INSERT INTO staff (email, name, password_hash, role, created_at, updated_at) \
                     VALUES ('Ann@example.com', 'Ann', 'h', 'admin', {AT}, {AT})"
                ),
                "staff_email_key",
            ),
        ];
        for (insert, constraint) in &cases {
            execute(db, insert).await.expect("the first insert");
            let again = insert.replace("Ann@", "ann@");
            assert_eq!(conflict(execute(db, &again).await), *constraint, "{insert}");
        }

        execute(
            db,
            &format!(
                "INSERT INTO webhook_endpoints (id, url, events, secret, created_at, updated_at) \
                 VALUES (1, 'https://example.com/hook', '[\"*\"]', 's', {AT}, {AT})"
            ),
        )
        .await
        .expect("an endpoint");
        execute(
            db,
            &format!(
                "INSERT INTO webhook_events (id, type, subject, data, occurred_at) \
                 VALUES (1, 'invoice.paid', 'invoice:1', '{{}}', {AT})"
            ),
        )
        .await
        .expect("an event");
        let delivery = format!(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, subject, next_attempt_at, created_at, updated_at) \
             VALUES (1, 1, 'invoice:1', {AT}, {AT}, {AT})"
        );
        execute(db, &delivery).await.expect("a delivery");
        assert_eq!(
            conflict(execute(db, &delivery).await),
            "webhook_deliveries_endpoint_id_event_id_key"
        );
    }
);
