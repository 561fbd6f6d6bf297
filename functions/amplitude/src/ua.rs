//! Browser and operating system from a user agent, for events from analytics.js: the
//! part of `ua-parser-js` (Amplitude's fork, which the JavaScript integration used) that
//! names the common browsers and systems. Rarer browsers read as unknown.

/// What the integration took from `ua-parser-js`'s result.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// `browser.name`: `Chrome`, `Firefox`, `Safari`, `Mobile Safari`, `IE`, `Edge`, `Opera`.
    pub browser: Option<&'static str>,
    /// `browser.major`: the first number of the browser's version.
    pub major: Option<String>,
    /// `os.name`: `Windows`, `Mac OS`, `iOS`, `Android`, `Linux`, ...
    pub os: Option<&'static str>,
}

/// Browser rules in `ua-parser-js` order: (token before the version, name). The version
/// follows the token; `Version/` holds it for Safari.
const BROWSERS: &[(&str, &str)] = &[
    ("edge/", "Edge"),
    ("edg/", "Edge"),
    ("opr/", "Opera"),
    ("opera/", "Opera"),
    ("msie ", "IE"),
    ("trident/", "IE"),
    ("crios/", "Chrome"),
    ("chrome/", "Chrome"),
    ("fxios/", "Firefox"),
    ("firefox/", "Firefox"),
];

/// System rules, first match wins: (token, name).
const SYSTEMS: &[(&str, &str)] = &[
    ("windows phone", "Windows Phone"),
    ("windows", "Windows"),
    ("iphone", "iOS"),
    ("ipad", "iOS"),
    ("ipod", "iOS"),
    ("mac os x", "Mac OS"),
    ("android", "Android"),
    ("cros", "Chromium OS"),
    ("ubuntu", "Ubuntu"),
    ("linux", "Linux"),
];

/// Parses a user agent string.
pub fn parse(ua: &str) -> UserAgent {
    let lower = ua.to_ascii_lowercase();
    let mut result = UserAgent {
        os: SYSTEMS
            .iter()
            .find(|(t, _)| lower.contains(t))
            .map(|(_, n)| *n),
        ..UserAgent::default()
    };
    for (token, name) in BROWSERS {
        if let Some(at) = lower.find(token) {
            let version = &lower[at + token.len()..];
            // IE 11 names its version `rv:11.0`, not after `Trident/`.
            let version = match (*token, lower.find("rv:")) {
                ("trident/", Some(rv)) => &lower[rv + 3..],
                _ => version,
            };
            result.browser = Some(name);
            result.major = major(version);
            return result;
        }
    }
    if let (Some(at), true) = (lower.find("version/"), lower.contains("safari")) {
        let mobile = lower.contains("mobile/") || lower.contains("mobile safari");
        result.browser = Some(if mobile { "Mobile Safari" } else { "Safari" });
        result.major = major(&lower[at + "version/".len()..]);
    }
    result
}

/// The leading digits of a version.
fn major(version: &str) -> Option<String> {
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_browsers_and_systems() {
        let cases = [
            (
                "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
                "IE",
                "10",
                "Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                "Chrome",
                "120",
                "Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
                "Safari",
                "17",
                "Mac OS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                "Mobile Safari",
                "17",
                "iOS",
            ),
            (
                "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "Firefox",
                "121",
                "Ubuntu",
            ),
            (
                "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko",
                "IE",
                "11",
                "Windows",
            ),
        ];
        for (ua, browser, major, os) in cases {
            let parsed = parse(ua);
            assert_eq!(parsed.browser, Some(browser), "{ua}");
            assert_eq!(parsed.major.as_deref(), Some(major), "{ua}");
            assert_eq!(parsed.os, Some(os), "{ua}");
        }
        assert_eq!(parse("curl/8.0"), UserAgent::default());
    }
}
