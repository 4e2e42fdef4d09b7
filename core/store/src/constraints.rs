//! The unique constraints of the SQLite schema, read from its migrations and named as
//! PostgreSQL names them.
//!
//! PostgreSQL says which constraint a write broke; SQLite names an index only when it is on
//! expressions ("UNIQUE constraint failed: index 'staff_email_key'") and otherwise lists the
//! columns ("UNIQUE constraint failed: invoices.client_id, invoices.idempotency_key").
//! [`StoreError::Conflict`](crate::StoreError::Conflict) carries one name on both engines,
//! so those columns are mapped back to a name through [`by_columns`], a table derived once
//! (a [`LazyLock`]) from the SQLite migrations embedded in the binary, the same SQL that
//! built the database:
//! - `CREATE UNIQUE INDEX name ON t (a, b)`: `name` (the paired migrations give their indexes
//!   the same names);
//! - a table's `PRIMARY KEY`: `t_pkey`, and a table's or a column's `UNIQUE`: `t_a_b_key`,
//!   the names PostgreSQL gives them (`CONSTRAINT name` wins when written);
//! - later migrations are followed: `DROP INDEX`, `DROP TABLE`, `ALTER TABLE … RENAME TO`
//!   and `RENAME [COLUMN] … TO` (SQLite's way to change a key is to rebuild the table).
//!
//! Why read the migrations rather than ask SQLite (`pragma_index_list`) or keep a list: the
//! conversion from `sqlx::Error` has no connection at hand and must not be async, a list kept
//! by hand fell behind the schema (four unique indexes were missing from it), and the
//! embedded SQL is exactly what every database at this binary's migration level was built
//! from. `store/tests/migrations.rs` proves the result: every unique index PostgreSQL
//! reports maps, through SQLite's table and columns, to PostgreSQL's name, and a violating
//! insert names the same constraint on both engines.
//!
//! The reader knows the statements Keel's migrations write (identifiers, strings, numbers,
//! punctuation, `--` comments); a statement it does not recognise leaves the table as it was.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// PostgreSQL's longest identifier (NAMEDATALEN - 1), in bytes.
const MAX_IDENTIFIER: usize = 63;

/// One unique constraint or unique index of the SQLite schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unique {
    /// The name PostgreSQL reports for it.
    pub name: String,
    pub table: String,
    /// Its key in order: column names, or an expression's text (see `on_expressions`).
    pub columns: Vec<String>,
    /// Some key is an expression (`lower(email)`): SQLite then reports the index by name.
    pub on_expressions: bool,
}

/// Every unique constraint and unique index the SQLite migrations leave, primary keys
/// included, in the order they were created.
pub fn unique() -> &'static [Unique] {
    &SQLITE_UNIQUE
}

/// The constraint name for a SQLite violation of a unique key on `columns` of `table`, in
/// the key's order (as SQLite's message lists them).
pub fn by_columns(table: &str, columns: &[&str]) -> Option<&'static str> {
    SQLITE_UNIQUE
        .iter()
        .find(|u| {
            !u.on_expressions
                && u.table == table
                && u.columns.len() == columns.len()
                && u.columns.iter().zip(columns).all(|(a, b)| a == b)
        })
        .map(|u| u.name.as_str())
}

static SQLITE_UNIQUE: LazyLock<Vec<Unique>> = LazyLock::new(|| {
    let mut schema = Schema::default();
    for migration in crate::db::SQLITE_MIGRATIONS.iter() {
        if !migration.migration_type.is_down_migration() {
            schema.apply(&migration.sql);
        }
    }
    schema.finish()
});

/// The unique keys of the tables as the statements so far leave them.
#[derive(Default)]
struct Schema {
    /// Table name -> its unique keys, in creation order.
    tables: BTreeMap<String, Vec<Key>>,
    /// Creation order of the tables, for a stable result.
    order: Vec<String>,
}

/// A unique key as written. PostgreSQL names `t_pkey` and `t_a_b_key` after the table and
/// the columns they were created with; the table's part is taken from its final name,
/// because SQLite changes a key by rebuilding the table (create `t_new`, copy, drop `t`,
/// rename `t_new` to `t`) where PostgreSQL alters `t` in place. A table renamed on both
/// engines would keep PostgreSQL's old names: `store/tests/migrations.rs` would say so.
#[derive(Debug, Clone)]
struct Key {
    kind: KeyKind,
    columns: Vec<String>,
    on_expressions: bool,
}

#[derive(Debug, Clone)]
enum KeyKind {
    /// `CREATE UNIQUE INDEX name` or `CONSTRAINT name UNIQUE/PRIMARY KEY`.
    Named(String),
    PrimaryKey,
    /// Its columns when created, joined by `_` (PostgreSQL keeps the name when a column is
    /// renamed).
    Unique(String),
}

impl Schema {
    fn apply(&mut self, sql: &str) {
        for statement in statements(&tokens(sql)) {
            self.statement(&statement);
        }
    }

    fn statement(&mut self, t: &[Token]) {
        let words: Vec<String> = t.iter().take(8).map(Token::upper).collect();
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["CREATE", "TABLE", ..] => self.create_table(&t[2..]),
            ["CREATE", "UNIQUE", "INDEX", ..] => self.create_unique_index(&t[3..]),
            ["DROP", "INDEX", ..] => {
                if let Some(name) = skip_if_exists(&t[2..]).first().and_then(Token::ident) {
                    for keys in self.tables.values_mut() {
                        keys.retain(|k| !matches!(&k.kind, KeyKind::Named(n) if *n == name));
                    }
                }
            }
            ["DROP", "TABLE", ..] => {
                if let Some(name) = skip_if_exists(&t[2..]).first().and_then(Token::ident) {
                    self.tables.remove(&name);
                    self.order.retain(|n| *n != name);
                }
            }
            ["ALTER", "TABLE", _, "RENAME", "TO", _, ..] => {
                if let (Some(from), Some(to)) = (t[2].ident(), t[5].ident())
                    && let Some(keys) = self.tables.remove(&from)
                {
                    self.tables.insert(to.clone(), keys);
                    for n in &mut self.order {
                        if *n == from {
                            n.clone_from(&to);
                        }
                    }
                }
            }
            ["ALTER", "TABLE", _, "RENAME", ..] => {
                // RENAME [COLUMN] old TO new.
                let rest = match w.get(4) {
                    Some(&"COLUMN") => &t[5..],
                    _ => &t[4..],
                };
                if let (Some(table), Some(from), Some("TO"), Some(to)) = (
                    t[2].ident(),
                    rest.first().and_then(Token::ident),
                    rest.get(1).map(Token::upper).as_deref(),
                    rest.get(2).and_then(Token::ident),
                ) {
                    for key in self.tables.get_mut(&table).into_iter().flatten() {
                        for column in &mut key.columns {
                            if *column == from {
                                column.clone_from(&to);
                            }
                        }
                    }
                }
            }
            // ALTER TABLE … ADD [COLUMN] cannot add a UNIQUE or PRIMARY KEY column in SQLite,
            // nor DROP COLUMN drop one that is in a key: nothing else changes the keys.
            _ => {}
        }
    }

    /// `[IF NOT EXISTS] name ( definitions ) …`
    fn create_table(&mut self, t: &[Token]) {
        let t = skip_if_not_exists(t);
        let Some(table) = t.first().and_then(Token::ident) else {
            return;
        };
        let Some(body) = parenthesised(&t[1..]) else {
            return;
        };
        let mut keys = Vec::new();
        for definition in split_top_level(body) {
            if let Some(key) = table_constraint(definition) {
                keys.push(key);
            } else if let Some(key) = column_constraint(definition) {
                keys.push(key);
            }
        }
        if !self.tables.contains_key(&table) {
            self.order.push(table.clone());
        }
        self.tables.insert(table, keys);
    }

    /// `[IF NOT EXISTS] name ON table ( keys ) [WHERE …]`
    fn create_unique_index(&mut self, t: &[Token]) {
        let t = skip_if_not_exists(t);
        let (Some(name), Some(on), Some(table)) = (
            t.first().and_then(Token::ident),
            t.get(1).map(Token::upper),
            t.get(2).and_then(Token::ident),
        ) else {
            return;
        };
        if on != "ON" {
            return;
        }
        let Some(list) = parenthesised(&t[3..]) else {
            return;
        };
        let (columns, on_expressions) = key_list(list);
        if let Some(keys) = self.tables.get_mut(&table) {
            keys.push(Key {
                kind: KeyKind::Named(name),
                columns,
                on_expressions,
            });
        }
    }

    fn finish(self) -> Vec<Unique> {
        let mut out = Vec::new();
        for table in &self.order {
            for key in self.tables.get(table).into_iter().flatten() {
                let name = match &key.kind {
                    KeyKind::Named(n) => n.clone(),
                    KeyKind::PrimaryKey => postgres_name(table, None, "pkey"),
                    KeyKind::Unique(columns) => postgres_name(table, Some(columns), "key"),
                };
                out.push(Unique {
                    name,
                    table: table.clone(),
                    columns: key.columns.clone(),
                    on_expressions: key.on_expressions,
                });
            }
        }
        out
    }
}

/// `[CONSTRAINT name] PRIMARY KEY ( … )` or `[CONSTRAINT name] UNIQUE ( … )`.
fn table_constraint(d: &[Token]) -> Option<Key> {
    let (name, rest) = match d.first().map(Token::upper).as_deref() {
        Some("CONSTRAINT") => (Some(d.get(1)?.ident()?), &d[2..]),
        _ => (None, d),
    };
    let (primary, list) = match rest.first().map(Token::upper).as_deref() {
        Some("PRIMARY") if rest.get(1)?.upper() == "KEY" => (true, &rest[2..]),
        Some("UNIQUE") => (false, &rest[1..]),
        _ => return None,
    };
    let (columns, on_expressions) = key_list(parenthesised(list)?);
    let kind = match (name, primary) {
        (Some(name), _) => KeyKind::Named(name),
        (None, true) => KeyKind::PrimaryKey,
        (None, false) => KeyKind::Unique(columns.join("_")),
    };
    Some(Key {
        kind,
        columns,
        on_expressions,
    })
}

/// `name type … [CONSTRAINT c] PRIMARY KEY …` or `… UNIQUE …` on one column. Words inside
/// parentheses (a CHECK, a DEFAULT expression, REFERENCES t (id)) are not looked at.
fn column_constraint(d: &[Token]) -> Option<Key> {
    let column = d.first()?.ident()?;
    let mut depth = 0usize;
    let mut named = None;
    for (i, token) in d.iter().enumerate().skip(1) {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            _ => match token.upper().as_str() {
                "CONSTRAINT" => named = d.get(i + 1).and_then(Token::ident),
                "PRIMARY" if d.get(i + 1).map(Token::upper).as_deref() == Some("KEY") => {
                    return Some(Key {
                        kind: named.map_or(KeyKind::PrimaryKey, KeyKind::Named),
                        columns: vec![column],
                        on_expressions: false,
                    });
                }
                "UNIQUE" => {
                    return Some(Key {
                        kind: named.map_or_else(|| KeyKind::Unique(column.clone()), KeyKind::Named),
                        columns: vec![column],
                        on_expressions: false,
                    });
                }
                _ => {}
            },
        }
    }
    None
}

/// The keys of an index or constraint: a column name (`name [COLLATE c] [ASC|DESC]`), or an
/// expression, kept as its tokens' text.
fn key_list(list: &[Token]) -> (Vec<String>, bool) {
    let mut on_expressions = false;
    let columns = split_top_level(list)
        .into_iter()
        .map(|key| match plain_column(key) {
            Some(name) => name,
            None => {
                on_expressions = true;
                key.iter().map(Token::text).collect::<Vec<_>>().join(" ")
            }
        })
        .collect();
    (columns, on_expressions)
}

/// `name [COLLATE c] [ASC|DESC]`: the column's name; anything else is an expression.
fn plain_column(key: &[Token]) -> Option<String> {
    let name = key.first()?.ident()?;
    let mut rest = &key[1..];
    if rest.first().map(Token::upper).as_deref() == Some("COLLATE") {
        rest.get(1)?.ident()?;
        rest = &rest[2..];
    }
    if matches!(
        rest.first().map(Token::upper).as_deref(),
        Some("ASC" | "DESC")
    ) {
        rest = &rest[1..];
    }
    rest.is_empty().then_some(name)
}

/// The name PostgreSQL chooses for a constraint it names itself (`makeObjectName`): the
/// table, the columns and the label joined by `_`, the longer of table and columns
/// shortened a byte at a time until the whole fits in 63 bytes.
fn postgres_name(table: &str, columns: Option<&str>, label: &str) -> String {
    let overhead = label.len() + if columns.is_some() { 2 } else { 1 };
    let available = MAX_IDENTIFIER.saturating_sub(overhead);
    let mut table_len = table.len();
    let mut columns_len = columns.map_or(0, str::len);
    while table_len + columns_len > available {
        if table_len > columns_len {
            table_len -= 1;
        } else {
            columns_len -= 1;
        }
    }
    // Keel's identifiers are ASCII, so a byte is a character.
    match columns {
        Some(c) => format!("{}_{}_{label}", &table[..table_len], &c[..columns_len]),
        None => format!("{}_{label}", &table[..table_len]),
    }
}

// ----------------------------------------------------------------------------------------
// A tokenizer for the statements migrations write.
// ----------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A bare word (keyword or identifier) or a number.
    Word(String),
    /// A `"quoted"`, `` `quoted` `` or `[quoted]` identifier, unquoted.
    Quoted(String),
    /// A `'string'`, as written (quotes included).
    Str(String),
    Punct(char),
}

impl Token {
    fn upper(&self) -> String {
        match self {
            Token::Word(w) => w.to_ascii_uppercase(),
            _ => String::new(),
        }
    }

    /// The identifier this token names (lowercased when bare, as both engines fold it).
    fn ident(&self) -> Option<String> {
        match self {
            Token::Word(w) if !w.starts_with(|c: char| c.is_ascii_digit()) => {
                Some(w.to_ascii_lowercase())
            }
            Token::Quoted(q) => Some(q.clone()),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Token::Word(w) | Token::Quoted(w) | Token::Str(w) => w.clone(),
            Token::Punct(c) => c.to_string(),
        }
    }
}

fn tokens(sql: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
            }
            '\'' => {
                let mut s = String::from('\'');
                while let Some(c) = chars.next() {
                    s.push(c);
                    if c == '\'' {
                        if chars.peek() == Some(&'\'') {
                            s.push('\'');
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push(Token::Str(s));
            }
            '"' | '`' | '[' => {
                let close = match c {
                    '[' => ']',
                    other => other,
                };
                let name: String = chars.by_ref().take_while(|&c| c != close).collect();
                out.push(Token::Quoted(name));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '$' || n == '.' {
                        w.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            other => out.push(Token::Punct(other)),
        }
    }
    out
}

/// Splits at `;`. A trigger's body (`BEGIN …; END`) falls apart into pieces that start
/// with no statement this reader acts on, so they are ignored.
fn statements(tokens: &[Token]) -> Vec<Vec<Token>> {
    tokens
        .split(|t| *t == Token::Punct(';'))
        .filter(|s| !s.is_empty())
        .map(<[Token]>::to_vec)
        .collect()
}

fn skip_if_exists(t: &[Token]) -> &[Token] {
    match (t.first().map(Token::upper), t.get(1).map(Token::upper)) {
        (Some(a), Some(b)) if a == "IF" && b == "EXISTS" => &t[2..],
        _ => t,
    }
}

fn skip_if_not_exists(t: &[Token]) -> &[Token] {
    let words: Vec<String> = t.iter().take(3).map(Token::upper).collect();
    if words == ["IF", "NOT", "EXISTS"] {
        &t[3..]
    } else {
        t
    }
}

/// The tokens inside the parentheses `t` starts with.
fn parenthesised(t: &[Token]) -> Option<&[Token]> {
    if t.first() != Some(&Token::Punct('(')) {
        return None;
    }
    let mut depth = 0usize;
    for (i, token) in t.iter().enumerate() {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&t[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at the commas outside parentheses.
fn split_top_level(t: &[Token]) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in t.iter().enumerate() {
        match token {
            Token::Punct('(') => depth += 1,
            Token::Punct(')') => depth = depth.saturating_sub(1),
            Token::Punct(',') if depth == 0 => {
                parts.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < t.len() {
        parts.push(&t[start..]);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(sql: &str) -> Vec<Unique> {
        let mut schema = Schema::default();
        schema.apply(sql);
        schema.finish()
    }

    fn keys(sql: &str) -> Vec<(String, String, Vec<String>, bool)> {
        read(sql)
            .into_iter()
            .map(|u| (u.name, u.table, u.columns, u.on_expressions))
            .collect()
    }

    fn key(
        name: &str,
        table: &str,
        columns: &[&str],
        on_expressions: bool,
    ) -> (String, String, Vec<String>, bool) {
        (
            name.into(),
            table.into(),
            columns.iter().map(|c| c.to_string()).collect(),
            on_expressions,
        )
    }

    #[test]
    fn the_statements_migrations_write_are_read_as_postgresql_names_them() {
        let sql = "
            -- a comment with ; and UNIQUE (nothing) in it
            CREATE TABLE t (
                id     INTEGER PRIMARY KEY,
                code   TEXT NOT NULL UNIQUE,
                note   TEXT DEFAULT 'a, b; UNIQUE (x)' CHECK (note IN ('x', 'y')),
                parent INTEGER REFERENCES t (id),
                a      TEXT,
                b      TEXT,
                UNIQUE (a, b)
            );
            CREATE TABLE kv (k TEXT NOT NULL, \"key\" TEXT NOT NULL, PRIMARY KEY (k, \"key\"));
            CREATE TABLE named (x TEXT, CONSTRAINT named_x_unique UNIQUE (x));
            CREATE UNIQUE INDEX t_lower_key ON t (lower(code));
            CREATE UNIQUE INDEX IF NOT EXISTS t_parent_key ON t (parent, a DESC) WHERE a IS NOT NULL;
            CREATE INDEX t_plain_idx ON t (b);
            CREATE TRIGGER t_no_update BEFORE UPDATE ON t BEGIN SELECT RAISE(ABORT, 'no'); END;
        ";
        assert_eq!(
            keys(sql),
            [
                key("t_pkey", "t", &["id"], false),
                key("t_code_key", "t", &["code"], false),
                key("t_a_b_key", "t", &["a", "b"], false),
                key("t_lower_key", "t", &["lower ( code )"], true),
                key("t_parent_key", "t", &["parent", "a"], false),
                key("kv_pkey", "kv", &["k", "key"], false),
                key("named_x_unique", "named", &["x"], false),
            ]
        );
    }

    #[test]
    fn later_migrations_drop_and_rename_what_earlier_ones_made() {
        let sql = "
            CREATE TABLE s (name TEXT PRIMARY KEY, x TEXT);
            CREATE UNIQUE INDEX s_x_key ON s (x);
            CREATE TABLE s_new (name TEXT NOT NULL PRIMARY KEY, x TEXT);
            INSERT INTO s_new (name, x) SELECT name, x FROM s;
            DROP TABLE s;
            ALTER TABLE s_new RENAME TO s;
            CREATE TABLE r (a TEXT, b TEXT, UNIQUE (a, b));
            ALTER TABLE r RENAME COLUMN a TO c;
            ALTER TABLE r RENAME b TO d;
            CREATE TABLE gone (id INTEGER PRIMARY KEY, y TEXT);
            CREATE UNIQUE INDEX gone_y_key ON gone (y);
            DROP INDEX gone_y_key;
        ";
        assert_eq!(
            keys(sql),
            [
                key("s_pkey", "s", &["name"], false),
                key("r_a_b_key", "r", &["c", "d"], false),
                key("gone_pkey", "gone", &["id"], false),
            ]
        );
    }

    #[test]
    fn long_names_are_shortened_as_postgresql_shortens_them() {
        // PostgreSQL 15: CREATE TABLE a_table_with_a_rather_long_name_for_this (
        //   a_column_with_a_long_name TEXT, another_long_column TEXT,
        //   UNIQUE (a_column_with_a_long_name, another_long_column))
        // names the constraint a_table_with_a_rather_long_na_a_column_with_a_long_name_ano_key.
        assert_eq!(
            postgres_name(
                "a_table_with_a_rather_long_name_for_this",
                Some("a_column_with_a_long_name_another_long_column"),
                "key"
            ),
            "a_table_with_a_rather_long_na_a_column_with_a_long_name_ano_key"
        );
        assert_eq!(postgres_name("clients", None, "pkey"), "clients_pkey");
        assert_eq!(
            postgres_name("webhook_deliveries", Some("endpoint_id_event_id"), "key"),
            "webhook_deliveries_endpoint_id_event_id_key"
        );
    }

    #[test]
    fn the_embedded_migrations_give_every_unique_key_a_name() {
        let all = unique();
        assert!(
            all.iter().any(|u| u.name == "invoices_idempotency_key"
                && u.columns == ["client_id", "idempotency_key"]),
            "{all:#?}"
        );
        assert_eq!(
            by_columns("webhook_deliveries", &["endpoint_id", "event_id"]),
            Some("webhook_deliveries_endpoint_id_event_id_key")
        );
        assert_eq!(
            by_columns("plugin_kv", &["plugin_id", "key"]),
            Some("plugin_kv_pkey")
        );
        assert_eq!(by_columns("plugin_kv", &["key", "plugin_id"]), None);
    }
}
