//! A real PostgreSQL server for tests: Debian's binaries, a fresh cluster in a
//! temporary directory, on 127.0.0.1 and a free port, stopped on drop. `initdb`
//! refuses to run as root, so as root the cluster belongs to the `postgres` user
//! (or `nobody`).
//!
//! Without PostgreSQL installed, [`Postgres::start`] returns `None` and the test says
//! it is skipped, unless `SEGFN_REQUIRE_POSTGRES` is set (`scripts/test` sets it after
//! installing PostgreSQL), where it fails instead: CI never skips silently.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A running cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<String>,
    port: u16,
    /// The connection string of its `postgres` database, user `segfn`, no password.
    pub url: String,
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: `$SEGFN_PG_BIN`, or Debian's
/// newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEGFN_PG_BIN") {
        return Some(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The unprivileged user to run the cluster as, when we are root.
fn cluster_user() -> Option<(String, u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    ["postgres", "nobody"].into_iter().find_map(|name| {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, name]).output().ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        };
        Some((name.to_owned(), id("-u")?, id("-g")?))
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Postgres {
    /// Starts a fresh cluster, or returns `None` (saying so) when PostgreSQL is not
    /// installed and the caller may skip.
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(None)
    }

    /// Starts a cluster that takes TCP connections over TLS only (`hostssl` in
    /// `pg_hba.conf`), with this certificate and key (PEM).
    pub fn start_tls(cert: &str, key: &str) -> Option<Postgres> {
        Postgres::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Option<Postgres> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("SEGFN_REQUIRE_POSTGRES").is_none(),
                "SEGFN_REQUIRE_POSTGRES is set but no PostgreSQL is installed \
                 (looked in $SEGFN_PG_BIN and /usr/lib/postgresql/*/bin)"
            );
            eprintln!(
                "skipped: PostgreSQL is not installed (scripts/bootstrap-postgres installs \
                 Debian's; or set SEGFN_PG_BIN)"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("segfn-pg-")
            .tempdir()
            .expect("a temporary directory");
        let user = cluster_user();
        if let Some((_, uid, gid)) = &user {
            std::os::unix::fs::chown(dir.path(), Some(*uid), Some(*gid))
                .expect("giving the cluster's directory to its user");
        }
        let mut pg = Postgres {
            bin,
            user: user.map(|(name, _, _)| name),
            port: 0,
            url: String::new(),
            dir,
        };
        let data = pg.dir.path().join("data");
        pg.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-A".as_ref(),
                "trust".as_ref(),
                "-U".as_ref(),
                "segfn".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        let port = free_port();
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            pg.dir.path().display()
        );
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt as _;
            let owned = |name: &str, text: &str, mode: u32| {
                let path = data.join(name);
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
                if let Some((_, uid, gid)) = cluster_user() {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            };
            owned("server.crt", cert, 0o644);
            owned("server.key", key, 0o600);
            // Over TCP, TLS or nothing.
            owned(
                "pg_hba.conf",
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
                0o600,
            );
            options.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        let log = pg.dir.path().join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        pg.url = format!("postgres://segfn@127.0.0.1:{port}/postgres");
        pg.port = port;
        Some(pg)
    }

    /// The same database through the cluster's Unix socket (the host is the socket's
    /// directory, percent-encoded).
    pub fn socket_url(&self) -> String {
        let dir = self.dir.path().display().to_string().replace('/', "%2F");
        format!("postgres://segfn@{dir}:{}/postgres", self.port)
    }

    /// `program` of the cluster's, to run as its user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// Runs one of the cluster's programs as its user; panics with its output on failure.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
        out
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.url.is_empty() {
            return;
        }
        // Immediate: the cluster is thrown away with its directory.
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
