//! A throwaway database per benchmark and engine: a temporary SQLite file, or a schema of
//! its own on a PostgreSQL server (created and dropped by `keel_store::bench`). Never a
//! database left over from an earlier run.

use anyhow::{Context, Result};
use keel_store::Db;
use keel_store::db::ConnectOptions;

/// A migrated, empty database; [`Scratch::drop_it`] removes it.
pub struct Scratch {
    pub db: Db,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    Schema { server: String, schema: String },
}

impl Scratch {
    pub async fn sqlite() -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!(
            "keel-bench-{}-{}.db",
            std::process::id(),
            rand::random::<u32>()
        ));
        let db = Db::connect(
            &format!("sqlite://{}", path.display()),
            &ConnectOptions::default(),
        )
        .await?;
        db.migrate().await?;
        Ok(Scratch {
            db,
            cleanup: Cleanup::File(path),
        })
    }

    pub async fn postgres(server: &str) -> Result<Scratch> {
        let schema = format!(
            "keel_bench_{}_{}",
            std::process::id(),
            rand::random::<u32>()
        );
        keel_store::bench::create_schema(server, &schema)
            .await
            .with_context(|| {
                format!(
                    "cannot create a scratch schema on PostgreSQL at {}",
                    keel_store::db::redact_url(server)
                )
            })?;
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-c%20search_path%3D{schema}");
        let db = Db::connect(
            &url,
            &ConnectOptions {
                max_connections: 16,
                ..Default::default()
            },
        )
        .await?;
        db.migrate().await?;
        Ok(Scratch {
            db,
            cleanup: Cleanup::Schema {
                server: server.to_string(),
                schema,
            },
        })
    }

    pub async fn drop_it(self) {
        self.db.close().await;
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Schema { server, schema } => {
                let _ = keel_store::bench::drop_schema(&server, &schema).await;
            }
        }
    }
}
