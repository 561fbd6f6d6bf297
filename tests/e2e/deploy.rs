//! The container image's root filesystem, as deploy/rootfs.sh makes it and
//! deploy/Containerfile ships it, run with chroot as the image runs: no shell, the
//! unprivileged user 65532, only the image's own files. `segfn serve` starts, answers
//! `/healthz` and a delivery, keeps its store where the image's variables say (private
//! to its user), `segfn healthz` (the image's HEALTHCHECK) tells up from down, and a
//! JavaScript function builds with the runtime guest the image carries. Needs root
//! (chroot), as CI has; skipped otherwise, saying so.

use crate::support::*;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};

/// `segfn` inside `rootfs`, as user 65532, with the image's environment only.
fn in_image(rootfs: &Path) -> Command {
    // An absolute path: the environment is cleared, PATH with it.
    let mut c = Command::new("/usr/sbin/chroot");
    c.arg("--userspec=65532:65532")
        .arg(rootfs)
        .arg("/usr/local/bin/segfn")
        .env_clear()
        .env("SEGFN_JS_RUNTIME", "/opt/segfn/segfn-js.wasm")
        .env("XDG_DATA_HOME", "/var/lib")
        .env("XDG_CACHE_HOME", "/var/cache")
        .env("SEGFN_LOG", "warn");
    c
}

#[tokio::test]
async fn the_images_root_filesystem_serves_builds_and_checks_health() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chroot needs root (CI runs as root)");
        return;
    }
    let partner = Partner::start().await;
    let forwarder = tokio::task::spawn_blocking(|| example_wasm("forwarder"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The runtime guest as segfn has it (built into it by its build.rs).
    let runtime = dir.path().join("segfn_js.wasm");
    let bytes = tokio::task::spawn_blocking(|| {
        segfn::javascript::runtime_bytes(Some(&guest_target_dir()))
            .expect("the JavaScript runtime guest")
    })
    .await
    .unwrap();
    std::fs::write(&runtime, &bytes[..]).unwrap();
    let rootfs = dir.path().join("rootfs");
    let made = Command::new(root().join("deploy/rootfs.sh"))
        .arg(env!("CARGO_BIN_EXE_segfn"))
        .arg(&runtime)
        .arg(&rootfs)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    std::fs::copy(&forwarder, rootfs.join("functions/function.wasm")).unwrap();
    std::fs::copy(
        root().join("functions/forwarder-js/handler.js"),
        rootfs.join("functions/handler.js"),
    )
    .unwrap();
    let settings = format!(
        r#"{{"apiKey": "sk_image_secret", "endpoint": "{}"}}"#,
        partner.url("/v1")
    );
    std::fs::write(rootfs.join("config/settings.json"), settings).unwrap();

    let mut served = in_image(&rootfs)
        .args([
            "serve",
            "/functions/function.wasm",
            "--api-key",
            "key-image",
        ])
        .args(["--settings", "/config/settings.json"])
        .args([
            "--allow-host",
            &partner.addr.to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = listening_url(&mut served);
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _served = Stop(served);

    let body = serde_json::to_vec(&track("Signed Up", "u-image")).unwrap();
    let resp = segment_post(&base, "key-image", body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(partner.received().len(), 1);

    // The store is where XDG_DATA_HOME puts it, the image user's alone.
    let store = rootfs.join("var/lib/segfn/store.redb");
    let meta = std::fs::metadata(&store).expect("the store in /var/lib/segfn");
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (65532, 0o600)
    );

    // The HEALTHCHECK: 0 while it serves, 1 for nothing listening.
    let up = in_image(&rootfs)
        .args(["healthz", &format!("{base}/healthz")])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let down = in_image(&rootfs)
        .args(["healthz", "http://127.0.0.1:9/healthz"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("did not answer"));

    // A JavaScript function builds in the image, with the runtime guest it carries.
    let built = in_image(&rootfs)
        .args(["build", "/functions/handler.js", "-o", "/tmp/handler.wasm"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "{stderr}");
    assert!(stderr.contains("pre-initialised into"), "{stderr}");
    assert!(rootfs.join("tmp/handler.wasm").is_file());
}
