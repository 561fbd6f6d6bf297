"""Fixtures for the browser tests: a partner API on 127.0.0.1, `segfn dev` on a copy of
the forwarder example, and Debian's chromium driven by Playwright.

`scripts/test` runs these after the cargo tests (`scripts/bootstrap-browser` installs
chromium and the Python packages). By hand:

    ./scripts/bootstrap-browser && cargo build -p segfn --bin segfn
    target/browser-venv/bin/python -m pytest tests/browser

Environment: CARGO_TARGET_DIR (default target/), SEGFN_BIN (default
$CARGO_TARGET_DIR/debug/segfn), CHROMIUM (default: chromium on PATH).
"""

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
SEGFN = Path(os.environ.get("SEGFN_BIN") or TARGET / "debug" / "segfn")
# Where guests are built: the e2e tests' directory (tests/e2e/support.rs), so the
# forwarder's dependencies compiled there are reused.
# Apart from target/guests, where the e2e tests build the examples themselves: this copy
# of the forwarder has the same package name and would overwrite their module.
GUESTS = REPO / "target" / "scratch-guests"
# Long enough for a first build where nothing is compiled yet (the std library too).
FIRST_BUILD_SECONDS = 900


class Partner:
    """A partner API that records requests; paths under /fail answer 503."""

    def __init__(self):
        self.received = []
        partner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                partner.received.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = 503 if self.path.startswith("/fail") else 200
                payload = b'{"ok": true}' if status == 200 else b'{"error": "busy"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://%s%s" % (self.addr, path)


@pytest.fixture(scope="session")
def partner():
    server = Partner()
    yield server
    server.server.shutdown()


def copy_crate(name: str, dest: Path, subdirs, dependencies: str, extra: str = ""):
    """functions/NAME as a crate of its own: its own workspace, the SDK by path, the
    workspace's lock file so nothing is resolved anew; `subdirs` and `settings.json`
    (when there is one) copied, `dependencies` (TOML lines after the SDK's) and `extra`
    (more TOML) in its manifest."""
    source = REPO / "functions" / name
    for sub in subdirs:
        shutil.copytree(source / sub, dest / sub)
    if (source / "settings.json").is_file():
        shutil.copy(source / "settings.json", dest / "settings.json")
    shutil.copy(REPO / "Cargo.lock", dest / "Cargo.lock")
    (dest / "Cargo.toml").write_text(
        f"""[workspace]

[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
{dependencies}
{extra}"""
    )


SDK = json.dumps(str(REPO / "guest-sdk"))
SERDE_JSON = 'serde_json = { version = "1", features = ["preserve_order", "arbitrary_precision", "float_roundtrip"] }'


def copy_forwarder(dest: Path):
    """functions/forwarder, with its sample events and settings."""
    copy_crate(
        "forwarder",
        dest,
        ("src", "events"),
        f'segfn-sdk = {{ path = {SDK}, features = ["schema"] }}\n'
        f'serde = {{ version = "1", features = ["derive"] }}\n{SERDE_JSON}\n',
        '\n[profile.release]\nlto = "thin"\n',
    )


def copy_github_source(dest: Path):
    """functions/github-source (a source function), with its sample webhook requests."""
    copy_crate("github-source", dest, ("src", "requests"), f"segfn-sdk = {{ path = {SDK} }}\n{SERDE_JSON}\n")


class Dev:
    """A running `segfn dev`."""

    def __init__(self, dir: Path, partner: Partner):
        self.dir = dir
        self.log_path = dir / "dev.log"
        self.log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(SEGFN), "dev", str(dir), "--port", "0",
                "--allow-host", partner.addr,
                "--target-dir", str(GUESTS),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.log()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def status(self):
        with urllib.request.urlopen(self.url + "api/status", timeout=10) as response:
            return json.load(response)

    def wait_for_build(self, state, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status["build"]["state"] == state:
                return status
            time.sleep(0.25)
        raise AssertionError("no %s build in %d s; log:\n%s" % (state, timeout, self.log()))

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log_file.close()


def running_dev(tmp_path_factory, partner, name, copy):
    """`segfn dev` on a copy (made by `copy`) of functions/NAME, once it has built."""
    if not SEGFN.is_file():
        pytest.fail(f"{SEGFN} is missing: run `cargo build -p segfn --bin segfn` (or set SEGFN_BIN)")
    dir = tmp_path_factory.mktemp(name)
    copy(dir)
    server = Dev(dir, partner)
    try:
        server.wait_for_build("ok", FIRST_BUILD_SECONDS)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dev(tmp_path_factory, partner):
    yield from running_dev(tmp_path_factory, partner, "forwarder", copy_forwarder)


@pytest.fixture(scope="module")
def source_dev(tmp_path_factory, partner):
    """`segfn dev` on a copy of the GitHub source function."""
    yield from running_dev(tmp_path_factory, partner, "github-source", copy_github_source)


@pytest.fixture(scope="session")
def browser():
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root here, where chromium's sandbox refuses.
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_page(browser, server):
    """A fresh browser context on `server`'s page; fails the test if the page raised."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    yield page
    context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def page(browser, dev):
    yield from open_page(browser, dev)


@pytest.fixture
def source_page(browser, source_dev):
    yield from open_page(browser, source_dev)
