"""`segfn dev` on a source function in a real browser: the crate's webhook requests are
the samples, a run shows the calls the function emitted, an edited request (header,
body) changes them, a long value wraps, and a request the function cannot use shows its
outcome."""

import json
import re

from playwright.sync_api import expect


def test_a_webhook_request_runs_and_shows_what_the_function_emitted(source_page):
    page = source_page
    expect(page.get_by_test_id("build-state")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("function-name")).to_have_text("github-source")

    page.get_by_test_id("sample-select").select_option("requests/issue-opened.json")
    expect(page.get_by_test_id("event-input")).to_have_value(re.compile('"X-Github-Event": "issues"'))
    expect(page.get_by_test_id("event-error")).to_have_text("")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("outcome")).to_have_text("SUCCESS")
    output = page.get_by_test_id("output")
    expect(output).to_contain_text('"event": "issues opened"')
    expect(output).to_contain_text('"type": "track"')
    expect(output).to_contain_text('"objects": []')

    # The request edited on the page: another event header, another sender.
    request = json.loads(page.get_by_test_id("event-input").input_value())
    request["payload"]["headers"]["X-Github-Event"] = "star"
    request["payload"]["body"]["sender"]["id"] = 4242
    page.get_by_test_id("event-input").fill(json.dumps(request, indent=2))
    expect(page.get_by_test_id("event-error")).to_have_text("")
    page.get_by_test_id("run-button").click()
    expect(output).to_contain_text('"event": "star opened"')
    expect(output).to_contain_text('"userId": "4242"')

    # A long value wraps in the OUTPUT pane instead of running off its side.
    request["payload"]["body"]["sender"]["id"] = "x" * 600
    page.get_by_test_id("event-input").fill(json.dumps(request, indent=2))
    page.get_by_test_id("run-button").click()
    expect(output).to_contain_text("x" * 100)
    assert output.evaluate("e => e.scrollWidth <= e.clientWidth"), "the output pane scrolls sideways"

    # A request without a body is caught on the page; one whose body the function
    # cannot read runs and shows the function's error.
    page.get_by_test_id("event-input").fill('{"payload": {"headers": {}}}')
    expect(page.get_by_test_id("event-error")).to_contain_text("needs a body")
    page.get_by_test_id("event-input").fill('{"payload": {"body": "<html>", "headers": {}}}')
    expect(page.get_by_test_id("event-error")).to_have_text("")
    page.get_by_test_id("run-button").click()
    expect(page.get_by_test_id("outcome")).not_to_have_text("SUCCESS")
    expect(page.get_by_test_id("outcome-message")).to_contain_text("not the JSON expected")
    expect(output).to_contain_text("null")
