//! Finding a PostgreSQL server for tests.
//!
//! Order: `KEEL_TEST_PG_URL`; else `postgres://postgres@127.0.0.1:5432/postgres` if it
//! answers; else a throwaway cluster started by `scripts/pg-throwaway start` (initdb from the
//! installed server binaries, a private port, trust auth), shared by every test process of
//! the run. If none of these works the test fails, with `CI=true` or without: a backend is
//! never skipped silently.

use sqlx::Connection;
use std::path::PathBuf;
use std::process::Command;
use tokio::sync::OnceCell;

static SERVER: OnceCell<String> = OnceCell::const_new();

const LOCAL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The URL of the server tests create their schemas on.
pub async fn server_url() -> String {
    SERVER.get_or_init(find).await.clone()
}

async fn answers(url: &str) -> bool {
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            sqlx::PgConnection::connect(url)
        )
        .await,
        Ok(Ok(_))
    )
}

async fn find() -> String {
    if let Ok(url) = std::env::var("KEEL_TEST_PG_URL") {
        assert!(
            answers(&url).await,
            "KEEL_TEST_PG_URL={url} does not answer"
        );
        return url;
    }
    if answers(LOCAL).await {
        return LOCAL.to_string();
    }
    let script = workspace_root().join("scripts/pg-throwaway");
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && !url.is_empty(),
        "no PostgreSQL for the tests: KEEL_TEST_PG_URL is unset, nothing answers on 127.0.0.1:5432, and \
         scripts/pg-throwaway could not start a cluster:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        answers(&url).await,
        "the throwaway cluster at {url} does not answer"
    );
    url
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Runs one statement on the server with a short-lived connection.
pub async fn execute(server: &str, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

/// The server URL with `search_path` set to `schema` for every connection.
pub fn with_search_path(server: &str, schema: &str) -> String {
    let sep = if server.contains('?') { '&' } else { '?' };
    format!("{server}{sep}options=-c%20search_path%3D{schema}")
}
