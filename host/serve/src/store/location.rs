//! Where the store is, read from the configuration or `--store`: a file for the
//! embedded engine or a PostgreSQL connection string; the one place that knows both
//! engines, and opens the one named.

use super::{Store, StoreError};
use serde::Deserialize;
use std::time::Duration;

/// Where the store is: the embedded file (the default, for one machine) or a
/// PostgreSQL database shared by several replicas. Written as a path or a
/// `postgres://` (or `postgresql://`) connection string.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A redb file, created when missing.
    File(std::path::PathBuf),
    /// A PostgreSQL connection string (it may hold a password: never printed).
    Postgres(String),
}

impl StoreLocation {
    /// Where the store is kept when neither the configuration nor `--store` says: the
    /// user's data directory (`$XDG_DATA_HOME/segfn/store.redb`, else
    /// `~/.local/share/segfn/store.redb`), not the directory the server happened to be
    /// started from. Without either variable the path is empty, and opening it asks
    /// for `--store`.
    pub fn default_file() -> StoreLocation {
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(std::path::PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|home| home.join(".local/share"))
            });
        StoreLocation::File(data.map_or_else(Default::default, |d| d.join("segfn/store.redb")))
    }

    /// Reads a path or a connection string: a `postgres://` or `postgresql://` URL
    /// (any case), or PostgreSQL's `key=value` form (`host=... dbname=...`). Any other
    /// `scheme://` is refused without repeating the text (it may hold a password).
    pub fn parse(text: &str) -> Result<StoreLocation, String> {
        let trimmed = text.trim_start();
        if let Some((scheme, _)) = trimmed.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            return match scheme.as_str() {
                "postgres" | "postgresql" => Ok(StoreLocation::Postgres(text.to_owned())),
                _ if scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
                {
                    Err(format!(
                        "the store's {scheme}:// is not a store segfn knows: give a file path \
                         or a postgres:// connection string"
                    ))
                }
                _ => Ok(StoreLocation::File(text.into())),
            };
        }
        let conninfo = trimmed.split_whitespace().next().is_some_and(|word| {
            word.split_once('=').is_some_and(|(key, _)| {
                [
                    "host", "hostaddr", "port", "dbname", "user", "password", "sslmode",
                ]
                .contains(&key)
            })
        });
        Ok(if conninfo {
            StoreLocation::Postgres(text.to_owned())
        } else {
            StoreLocation::File(text.into())
        })
    }

    /// For messages: the path, or the database without credentials.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::File(path) => path.display().to_string(),
            StoreLocation::Postgres(url) => match super::postgres::tls::split(url).0.parse() {
                Ok(config) => format!("postgres://{}", super::postgres::describe_url(&config)),
                Err(_) => "postgres://(an invalid connection string)".into(),
            },
        }
    }

    /// Opens it: the file's engine, or a pool of `pool_size` connections to the
    /// database (creating or migrating its schema).
    pub async fn open(
        &self,
        window: Duration,
        max_entries: u64,
        pool_size: usize,
    ) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreLocation::File(path) if path.as_os_str().is_empty() => {
                return Err(StoreError(
                    "no --store given, and neither $XDG_DATA_HOME nor $HOME names a data \
                     directory to keep it in: give --store PATH (or store = \"PATH\" in [server])"
                        .into(),
                ));
            }
            StoreLocation::File(path) => {
                let path = path.clone();
                let opened = tokio::task::spawn_blocking(move || {
                    super::redb::Dedupe::open(&path, window, max_entries)
                        .and_then(super::redb::RedbStore::open)
                })
                .await
                .map_err(|e| StoreError(e.to_string()))??;
                std::sync::Arc::new(opened)
            }
            StoreLocation::Postgres(url) => std::sync::Arc::new(
                super::postgres::PgStore::connect(url, pool_size, window, max_entries).await?,
            ),
        })
    }
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::str::FromStr for StoreLocation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StoreLocation::parse(s)
    }
}

impl<'de> Deserialize<'de> for StoreLocation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StoreLocation::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
