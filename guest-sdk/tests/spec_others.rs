//! The Mobile, B2B SaaS, Video and Email specs: Segment's examples (in
//! `tests/fixtures/segment-events/` and `tests/fixtures/spec-events/`) read into their
//! views with the values they have, and no event name belongs to two specs.

use segfn_sdk::spec::b2b_saas::{self, B2bSaas};
use segfn_sdk::spec::ecommerce::Ecommerce;
use segfn_sdk::spec::email::{self, Email};
use segfn_sdk::spec::mobile::{self, Mobile};
use segfn_sdk::spec::video::{self, TextOrList, Video};
use segfn_sdk::{Event, Object, Track};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixtures(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir)
}

/// `track-<name>.json` from `spec-events/` or `segment-events/`, checked to write back
/// unchanged.
fn example(name: &str) -> Track {
    let file = format!("track-{name}.json");
    let path = [fixtures("spec-events"), fixtures("segment-events")]
        .into_iter()
        .map(|dir| dir.join(&file))
        .find(|path| path.exists())
        .unwrap_or_else(|| panic!("no example {file}"));
    let text = std::fs::read_to_string(path).unwrap();
    // The Video and Email examples say `"action": "track"`, which `Event` reads.
    let Event::Track(track) = serde_json::from_str(&text).unwrap() else {
        panic!("{file}: not a track")
    };
    // Compared in compact form: the parts were read as their text, line breaks kept.
    let original: Value = serde_json::from_str(&text).unwrap();
    let back: Value = serde_json::from_str(&serde_json::to_string(&track).unwrap()).unwrap();
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(&original).unwrap(),
        "{file}: the event changed"
    );
    track
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

#[test]
fn mobile_examples() {
    assert_eq!(
        example("application-installed").spec::<Mobile>(),
        Some(Mobile::ApplicationInstalled(mobile::ApplicationInstalled {
            version: s("1.2.3"),
            build: s("1234"),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("application-opened").spec::<Mobile>(),
        Some(Mobile::ApplicationOpened(mobile::ApplicationOpened {
            from_background: Some(false),
            url: s("url://location"),
            referring_application: s("GMail"),
            ..Default::default()
        }))
    );
    assert_eq!(
        example("application-updated").spec::<Mobile>(),
        Some(Mobile::ApplicationUpdated(mobile::ApplicationUpdated {
            previous_version: s("1.1.2"),
            previous_build: s("1234"),
            version: s("1.2.0"),
            build: s("1456"),
            extra: Object::new(),
        }))
    );
    // The same event in the page's hidden example, with `previous_build` a number: the
    // event reads, the number is kept and reported.
    let Some(Mobile::ApplicationUpdated(updated)) =
        example("application-updated-api-example").spec::<Mobile>()
    else {
        panic!("not Application Updated")
    };
    assert_eq!(updated.previous_build, None);
    assert_eq!(updated.build.as_deref(), Some("1456"));
    let misfits: Vec<String> = updated.misfits().map(|m| m.to_string()).collect();
    assert_eq!(
        misfits,
        ["previous_build has an invalid type: 1234 where the spec has text"]
    );

    let campaign = mobile::Campaign {
        source: s("Network/FB/AdWords/MoPub/Source"),
        name: s("Campaign Name"),
        content: s("Organic Content Title"),
        ad_creative: s("Red Hello World Ad"),
        ad_group: s("Red Ones"),
        ..Default::default()
    };
    assert_eq!(
        example("install-attributed").spec::<Mobile>(),
        Some(Mobile::InstallAttributed(mobile::InstallAttributed {
            provider: s("Tune/Kochava/Branch/AppsFlyer"),
            campaign: Some(campaign),
            extra: Object::new(),
        }))
    );
    let push = mobile::Campaign {
        medium: s("Push"),
        source: s("Vendor Name"),
        name: s("Referral Flow"),
        content: s("Your friend invited you to play a match."),
        ..Default::default()
    };
    assert_eq!(
        example("push-notification-received").spec::<Mobile>(),
        Some(Mobile::PushNotificationReceived(
            mobile::PushNotificationReceived {
                campaign: Some(push.clone()),
                extra: Object::new(),
            }
        ))
    );
    let tapped = mobile::PushNotification {
        action: s("Accept"),
        campaign: Some(push),
        extra: Object::new(),
    };
    assert_eq!(
        example("push-notification-tapped").spec::<Mobile>(),
        Some(Mobile::PushNotificationTapped(tapped.clone()))
    );
    assert_eq!(
        example("push-notification-bounced").spec::<Mobile>(),
        Some(Mobile::PushNotificationBounced(tapped))
    );
    assert_eq!(
        example("deep-link-opened").spec::<Mobile>(),
        Some(Mobile::DeepLinkOpened(mobile::DeepLink {
            provider: s("Branch Metrics"),
            url: s("app://landing"),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("deep-link-clicked").spec::<Mobile>(),
        Some(Mobile::DeepLinkClicked(mobile::DeepLink {
            provider: s("Branch Metrics"),
            url: s("brnch.io/1234"),
            extra: Object::new(),
        }))
    );
    for (name, expected) in [
        ("application-backgrounded", "Application Backgrounded"),
        ("application-foregrounded", "Application Foregrounded"),
        ("application-uninstalled", "Application Uninstalled"),
        ("application-crashed", "Application Crashed"),
    ] {
        let view = example(name).spec::<Mobile>().unwrap();
        assert_eq!(view.name(), expected);
        assert!(view.extra().is_empty());
    }
    assert_eq!(
        Mobile::spec_name("Opened Application"),
        Some("Application Opened")
    );
}

#[test]
fn b2b_saas_examples() {
    let account = example("account-created");
    assert_eq!(
        account.spec::<B2bSaas>(),
        Some(B2bSaas::AccountCreated(b2b_saas::Account {
            account_name: s("Initech"),
            extra: Object::new(),
        }))
    );
    assert_eq!(account.context().group_id(), Some("acct_123"));
    assert_eq!(
        example("signed-up").spec::<B2bSaas>(),
        Some(B2bSaas::SignedUp(b2b_saas::SignedUp {
            kind: s("organic"),
            first_name: s("Peter"),
            last_name: s("Gibbons"),
            email: s("pgibbons@example.com"),
            phone: s("410-555-9412"),
            username: s("pgibbons"),
            title: s("Mr"),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("signed-in").spec::<B2bSaas>(),
        Some(B2bSaas::SignedIn(b2b_saas::Session {
            username: s("pgibbons"),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("invite-sent").spec::<B2bSaas>(),
        Some(B2bSaas::InviteSent(b2b_saas::InviteSent {
            invitee_email: s("pgibbons@example.com"),
            invitee_first_name: s("Peter"),
            invitee_last_name: s("Gibbons"),
            invitee_role: s("Owner"),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("trial-started").spec::<B2bSaas>(),
        Some(B2bSaas::TrialStarted(b2b_saas::Trial {
            trial_start_date: s("2018-08-28T04:09:47Z"),
            trial_end_date: s("2018-09-20T04:09:47Z"),
            trial_plan_name: s("Business"),
            extra: Object::new(),
        }))
    );
    assert_eq!(B2bSaas::spec_name("User Signed Up"), Some("Signed Up"));
}

#[test]
fn video_examples() {
    let Some(Video::PlaybackStarted(started)) = example("video-playback-started").spec::<Video>()
    else {
        panic!("not Video Playback Started")
    };
    assert_eq!(
        started,
        video::Playback {
            session_id: s("12345"),
            content_asset_ids: vec!["0129370".into()],
            content_pod_ids: vec!["segA".into(), "segB".into()],
            ad_asset_id: Some(TextOrList::List(vec!["ad123".into(), "ad097".into()])),
            ad_pod_id: Some(TextOrList::List(vec!["adSegA".into(), "adSegB".into()])),
            ad_type: Some(TextOrList::List(vec![
                "mid-roll".into(),
                "post-roll".into()
            ])),
            position: Some(0.0),
            total_length: Some(392.0),
            bitrate: Some(100.0),
            framerate: Some(29.0),
            video_player: s("youtube"),
            sound: Some(88.0),
            full_screen: Some(false),
            ad_enabled: Some(true),
            quality: s("hd1080"),
            livestream: Some(false),
            ..Default::default()
        }
    );
    assert_eq!(
        started.ad_type.as_ref().unwrap().values(),
        ["mid-roll", "post-roll"]
    );
    let Some(Video::PlaybackSeekStarted(seek)) =
        example("video-playback-seek-started").spec::<Video>()
    else {
        panic!("not a seek")
    };
    assert_eq!(
        (seek.position, seek.seek_position),
        (Some(278.0), Some(320.0))
    );
    assert_eq!(seek.content_asset_id.as_deref(), Some("0129370"));

    let Some(Video::ContentStarted(content)) = example("video-content-started").spec::<Video>()
    else {
        panic!("not Video Content Started")
    };
    assert_eq!(
        content,
        video::Content {
            session_id: s("12345"),
            asset_id: s("0129370"),
            pod_id: s("segA"),
            program: s("Planet Earth"),
            title: s("Seasonal Forests"),
            description: s("David Attenborough reveals the greatest woodlands on earth."),
            season: s("1"),
            position: Some(0.0),
            total_length: Some(3600.0),
            genre: s("Documentary"),
            publisher: s("BBC"),
            full_episode: Some(true),
            keywords: vec!["nature".into(), "forests".into(), "earth".into()],
            ..Default::default()
        }
    );
    let Some(Video::AdStarted(ad)) = example("video-ad-started").spec::<Video>() else {
        panic!("not Video Ad Started")
    };
    assert_eq!(
        ad,
        video::Ad {
            session_id: s("12345"),
            asset_id: s("0129370"),
            pod_id: s("segA"),
            kind: s("pre-roll"),
            title: s("The New New Thing!"),
            position: Some(0.0),
            total_length: Some(30.0),
            publisher: s("Apple"),
            load_type: s("dynamic"),
            ..Default::default()
        }
    );
    // Every video example: the right kind of view, nothing misfit.
    for (name, spec) in [
        ("playback-paused", "Video Playback Paused"),
        ("playback-interrupted", "Video Playback Interrupted"),
        ("playback-buffer-started", "Video Playback Buffer Started"),
        (
            "playback-buffer-completed",
            "Video Playback Buffer Completed",
        ),
        ("playback-seek-completed", "Video Playback Seek Completed"),
        ("playback-resumed", "Video Playback Resumed"),
        ("playback-completed", "Video Playback Completed"),
        ("playback-exited", "Video Playback Exited"),
        ("content-playing", "Video Content Playing"),
        ("content-completed", "Video Content Completed"),
        ("ad-playing", "Video Ad Playing"),
        ("ad-completed", "Video Ad Completed"),
    ] {
        let view = example(&format!("video-{name}")).spec::<Video>().unwrap();
        assert_eq!(view.name(), spec);
        assert!(view.misfits().is_empty(), "{name}: {:?}", view.misfits());
        assert!(view.extra().is_empty(), "{name}: {:?}", view.extra());
    }
    let Some(Video::AdCompleted(done)) = example("video-ad-completed").spec::<Video>() else {
        panic!()
    };
    assert_eq!(done.position, done.total_length);

    // An ad's nested content, and an ad type that is neither text nor a list of text.
    let props = json!({"asset_id": "a1", "content": {"title": "Seasonal Forests", "season": 1}});
    let ad = video::Ad::from_properties(props.as_object().unwrap());
    let content = ad.content.unwrap();
    assert_eq!(content.title.as_deref(), Some("Seasonal Forests"));
    assert_eq!(content.misfit("season").unwrap().expected, "text");
    let playback =
        video::Playback::from_properties(json!({"ad_type": ["pre-roll", 2]}).as_object().unwrap());
    assert_eq!(playback.ad_type, None);
    assert_eq!(playback.misfits().count(), 1);
}

#[test]
fn email_examples() {
    let message = email::EmailMessage {
        email_id: s("18vzF7u3z"),
        email_subject: s("First shirt on us!"),
        campaign_id: s("123"),
        campaign_name: s("New Customer Discount"),
        extra: Object::new(),
    };
    let bounced = example("email-bounced");
    assert_eq!(
        bounced.spec::<Email>(),
        Some(Email::EmailBounced(message.clone()))
    );
    assert_eq!(bounced.context().traits()["email"], "pgibbons@example.com");
    assert_eq!(
        example("email-delivered").spec::<Email>(),
        Some(Email::EmailDelivered(message.clone()))
    );
    assert_eq!(
        example("email-marked-as-spam").spec::<Email>(),
        Some(Email::EmailMarkedAsSpam(message.clone()))
    );
    assert_eq!(
        example("email-opened").spec::<Email>(),
        Some(Email::EmailOpened(message.clone()))
    );
    assert_eq!(
        example("email-link-clicked").spec::<Email>(),
        Some(Email::EmailLinkClicked(email::EmailLinkClicked {
            link_id: s("101"),
            link_url: s("https://www.buymyshirts.com?promo=NEWCUSTOMER"),
            message: message.clone(),
            extra: Object::new(),
        }))
    );
    assert_eq!(
        example("unsubscribed").spec::<Email>(),
        Some(Email::Unsubscribed(email::Unsubscribed {
            list_id: s("1425"),
            list_name: s("New customers"),
            message,
            extra: Object::new(),
        }))
    );
}

#[test]
fn every_example_belongs_to_exactly_one_spec() {
    for dir in ["spec-events", "segment-events"] {
        for entry in std::fs::read_dir(fixtures(dir)).unwrap() {
            let file = entry.unwrap().file_name().into_string().unwrap();
            let Some(name) = file
                .strip_prefix("track-")
                .and_then(|f| f.strip_suffix(".json"))
            else {
                continue;
            };
            let track = example(name);
            let specs = [
                track.spec::<Ecommerce>().map(|e| e.name()),
                track.spec::<Mobile>().map(|e| e.name()),
                track.spec::<B2bSaas>().map(|e| e.name()),
                track.spec::<Video>().map(|e| e.name()),
                track.spec::<Email>().map(|e| e.name()),
            ];
            let found: Vec<&str> = specs.into_iter().flatten().collect();
            // Examples of the generic track call ("Course Clicked", ...) belong to none.
            assert!(found.len() <= 1, "{file}: {found:?}");
            if dir == "spec-events" {
                assert_eq!(found, [track.event().unwrap()], "{file}");
            }
        }
    }
    let mut names: Vec<String> = [
        Ecommerce::NAMES,
        Mobile::NAMES,
        B2bSaas::NAMES,
        Video::NAMES,
        Email::NAMES,
    ]
    .concat()
    .into_iter()
    .flat_map(|names| names.iter())
    .map(|n| n.replace([' ', '_'], "").to_ascii_lowercase())
    .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "a name selects one event of one spec");
}
