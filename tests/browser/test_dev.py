"""`segfn dev`'s page in a real browser (Debian's chromium, driven by Playwright):
pick a sample event, edit the settings, run, and read the outcome, logs and request
trace; edit the settings in the form built from the module's schema (secrets masked,
required ones marked); paste a broken event and see it refused on the page; see a build
error rendered with file and line after a broken save, and cleared after the fix."""

import json
import re

from playwright.sync_api import expect

SECRET = "sk_browser_secret_4412"
# A rebuild of the forwarder takes seconds once its dependencies are compiled.
REBUILD_MS = 300_000


def settings_editor(page):
    """The settings' JSON editor, unfolded (with a settings form it starts folded)."""
    page.get_by_test_id("settings-json").evaluate("d => { d.open = true; }")
    return page.get_by_test_id("settings-input")


def settings_for(partner, path="/v1"):
    return json.dumps({"apiKey": SECRET, "endpoint": partner.url(path)}, indent=2)


def test_sample_event_runs_with_edited_settings(page, partner, dev):
    expect(page.get_by_test_id("build-state")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("function-name")).to_have_text("forwarder")
    # The settings editor starts from the crate's settings.json.
    expect(page.get_by_test_id("settings-input")).to_have_value(re.compile("demo-key-4f2a9c"))

    page.get_by_test_id("sample-select").select_option("spec/track-signed-up")
    expect(page.get_by_test_id("event-input")).to_have_value(re.compile('"event": "Signed Up"'))
    settings_editor(page).fill(settings_for(partner))
    received_before = len(partner.received)
    page.get_by_test_id("run-button").click()

    expect(page.get_by_test_id("outcome")).to_have_text("SUCCESS")
    expect(page.get_by_test_id("outcome-label")).to_contain_text("Success")
    expect(page.get_by_test_id("outcome-message")).to_be_hidden()
    expect(page.get_by_test_id("log-line")).to_have_count(1)
    expect(page.get_by_test_id("log-line")).to_contain_text('forwarded "Signed Up"')

    requests = page.get_by_test_id("request")
    expect(requests).to_have_count(1)
    expect(requests.get_by_test_id("request-method")).to_have_text("POST")
    expect(requests.get_by_test_id("request-status")).to_have_text("200")
    expect(requests.get_by_test_id("request-url")).to_have_text(partner.url("/v1/track"))
    body = requests.get_by_test_id("request-body")
    expect(body).to_contain_text('"name": "Signed Up"')
    expect(body).to_contain_text('"id": "019mr8mf4r"')
    expect(requests.get_by_test_id("response-body")).to_contain_text('"ok": true')
    expect(page.get_by_test_id("output")).to_contain_text("null")
    expect(page.get_by_test_id("stat-instructions")).to_have_text(re.compile(r"^[\d,]+$"))
    expect(page.get_by_test_id("stat-duration")).to_have_text(re.compile(r"(ms|s)$"))

    # The partner got the key; the page shows it nowhere outside the settings editor.
    assert len(partner.received) == received_before + 1
    sent = partner.received[-1]
    assert sent["path"] == "/v1/track"
    assert SECRET in json.dumps(sent["headers"])
    assert SECRET not in page.get_by_test_id("result").inner_text()
    assert "[redacted]" in page.get_by_test_id("requests").inner_text()

    history = page.get_by_test_id("history-item")
    expect(history.first).to_contain_text("Track: Signed Up")
    expect(history.first).to_contain_text("Success")


def test_settings_form_masks_secrets_and_marks_required_settings(page, partner, dev):
    expect(page.get_by_test_id("build-state")).to_have_attribute("data-state", "ok")
    form = page.get_by_test_id("settings-form")
    expect(form).to_be_visible()
    api_key = page.get_by_test_id("setting-apiKey")
    expect(api_key).to_have_attribute("type", "password")
    expect(api_key).to_have_attribute("aria-required", "true")
    expect(api_key).to_have_value("demo-key-4f2a9c")
    expect(form.locator("label", has=api_key)).to_contain_text("API Key *")
    expect(page.get_by_test_id("setting-endpoint")).not_to_have_attribute("aria-required", "true")
    # The JSON editor, which shows secrets in clear, starts folded: the key is nowhere
    # on the page as text.
    expect(page.get_by_test_id("settings-input")).to_be_hidden()
    assert "demo-key-4f2a9c" not in page.locator("body").inner_text()
    page.get_by_test_id("setting-show-apiKey").click()
    expect(api_key).to_have_attribute("type", "text")
    page.get_by_test_id("setting-show-apiKey").click()

    # A field edited goes into the settings the run uses.
    api_key.fill(SECRET)
    page.get_by_test_id("setting-endpoint").fill(partner.url("/form"))
    expect(page.get_by_test_id("settings-input")).to_have_value(re.compile(re.escape(partner.url("/form"))))
    page.get_by_test_id("sample-select").select_option("spec/track-signed-up")
    received_before = len(partner.received)
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("outcome")).to_have_text("SUCCESS")
    assert len(partner.received) == received_before + 1
    assert partner.received[-1]["path"] == "/form/track"
    assert SECRET in json.dumps(partner.received[-1]["headers"])
    assert SECRET not in page.locator("body").inner_text()

    # Edited as JSON, the form follows.
    settings_editor(page).fill(json.dumps({"apiKey": "k2", "endpoint": partner.url("/v1")}))
    expect(page.get_by_test_id("setting-endpoint")).to_have_value(partner.url("/v1"))
    expect(api_key).to_have_value("k2")


def test_pasted_event_is_checked_and_runs_are_kept(page, partner, dev):
    expect(page.get_by_test_id("build-state")).to_have_attribute("data-state", "ok")
    history = page.get_by_test_id("history-item")
    runs_before = history.count()

    # Broken JSON is refused on the page, with where it broke; nothing is run.
    page.get_by_test_id("sample-select").select_option("")
    page.get_by_test_id("event-input").fill('{\n  "type": "identify",\n  "userId": \n}')
    expect(page.get_by_test_id("event-error")).to_contain_text("not valid JSON")
    expect(page.get_by_test_id("event-error")).to_contain_text("line 4")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("run-error")).to_contain_text("Fix the JSON")
    expect(history).to_have_count(runs_before)

    # Settings must be an object.
    settings_editor(page).fill("[1, 2]")
    expect(page.get_by_test_id("settings-error")).to_contain_text("JSON object")

    # A valid paste runs; the partner answers 503, which Segment retries.
    page.get_by_test_id("event-input").fill(
        '{"type": "identify", "userId": "u-77", "traits": {"email": "a@example.com", "plan": "pro"}}'
    )
    expect(page.get_by_test_id("event-error")).to_have_text("")
    settings_editor(page).fill(settings_for(partner, "/fail"))
    expect(page.get_by_test_id("settings-error")).to_have_text("")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("outcome")).to_have_text("RETRY")
    expect(page.get_by_test_id("outcome-message")).to_contain_text("partner answered 503")
    expect(page.get_by_test_id("request-status")).to_have_text("503")
    expect(page.get_by_test_id("response-body")).to_contain_text('"error": "busy"')
    expect(history).to_have_count(runs_before + 1)
    expect(history.first).to_contain_text("Custom event")

    # An earlier run is one click away, with its event.
    if runs_before:
        history.nth(1).click()
        expect(page.get_by_test_id("result")).not_to_have_attribute(
            "data-run-id", history.first.get_attribute("data-run-id")
        )
        history.first.click()
    expect(page.get_by_test_id("outcome")).to_have_text("RETRY")
    page.get_by_test_id("event-input").fill("")
    page.get_by_test_id("load-run-event").click()
    expect(page.get_by_test_id("event-input")).to_have_value(re.compile('"userId": "u-77"'))


def test_build_error_is_shown_with_file_and_line_then_cleared(page, partner, dev):
    badge = page.get_by_test_id("build-state")
    expect(badge).to_have_attribute("data-state", "ok")
    good_build = int(badge.get_attribute("data-number"))
    expect(page.get_by_test_id("build-errors")).to_be_hidden()

    lib = dev.dir / "src" / "lib.rs"
    original = lib.read_text()
    lines = original.splitlines()
    index = next(i for i, l in enumerate(lines) if 'info!("forwarded {:?}"' in l)
    lines.insert(index, '        let broken: u32 = "oops";')
    try:
        lib.write_text("\n".join(lines) + "\n")
        expect(badge).to_have_attribute("data-state", "failed", timeout=REBUILD_MS)
        errors = page.get_by_test_id("build-errors")
        expect(errors).to_be_visible()
        expect(page.get_by_test_id("build-error-summary")).to_contain_text(
            f"src/lib.rs:{index + 1}:27: mismatched types"
        )
        expect(errors.get_by_test_id("diagnostic-location").first).to_have_text(
            f"src/lib.rs:{index + 1}:27"
        )
        expect(errors.get_by_test_id("diagnostic").first).to_contain_text("expected `u32`, found `&str`")
        expect(errors).to_contain_text(f"last good module, from build #{good_build}")

        # The last good module still runs.
        page.get_by_test_id("sample-select").select_option("spec/track-signed-up")
        settings_editor(page).fill(settings_for(partner))
        page.get_by_test_id("run-button").click()
        expect(page.get_by_test_id("outcome")).to_have_text("SUCCESS")
        expect(page.get_by_test_id("run-meta")).to_contain_text(f"build #{good_build}")
    finally:
        lib.write_text(original)

    expect(badge).to_have_attribute("data-state", "ok", timeout=REBUILD_MS)
    expect(page.get_by_test_id("build-errors")).to_be_hidden()
    assert int(badge.get_attribute("data-number")) > good_build
