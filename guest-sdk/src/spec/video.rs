//! Segment's [Video spec]: playback, content, ad and quality events as typed views (see
//! the [parent module](crate::spec) for how views read and what they keep).
//!
//! The spec shares one property set per level: every playback event has a [`Playback`],
//! every content event a [`Content`], every ad event an [`Ad`]. Positions and lengths are
//! seconds, read as `f64` (the spec says integers; players often send fractions).
//!
//! ```
//! use segfn_sdk::Track;
//! use segfn_sdk::spec::video::Video;
//!
//! let track: Track = serde_json::from_str(r#"{"type": "track", "event": "Video Content Playing",
//!     "properties": {"session_id": "12345", "asset_id": "0129370", "position": 10,
//!                    "total_length": 360, "keywords": ["entrepreneurship", "motivation"]}}"#).unwrap();
//! let Some(Video::ContentPlaying(content)) = track.spec::<Video>() else { panic!() };
//! assert_eq!(content.position, Some(10.0));
//! assert_eq!(content.keywords, ["entrepreneurship", "motivation"]);
//! ```
//!
//! [Video spec]: https://segment.com/docs/connections/spec/video/

use crate::spec::read::{Fit, events, view};
use serde_json::Value;

/// A value the spec allows as text or a list of text: `ad_asset_id`, `ad_pod_id` and
/// `ad_type` are lists on "Video Playback Started" and text elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub enum TextOrList {
    /// One value.
    Text(String),
    /// Several.
    List(Vec<String>),
}

impl TextOrList {
    /// The values, one or several.
    pub fn values(&self) -> Vec<&str> {
        match self {
            TextOrList::Text(text) => vec![text],
            TextOrList::List(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// Text, or a list whose elements are all text; anything else is a misfit, kept whole.
impl Fit for TextOrList {
    const EXPECTED: &'static str = "text or a list of text";
    const EXPECTED_LIST: &'static str = "a list of text or lists of text";
    fn fit(value: &Value) -> Option<TextOrList> {
        match value {
            Value::String(text) => Some(TextOrList::Text(text.clone())),
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(TextOrList::List),
            _ => None,
        }
    }
}

view! {
    /// The properties of every playback event (Video Playback Started, Paused, ...): the
    /// state of the player.
    Playback {
        /// `session_id`: the playback session, the same for all its events.
        session_id: Option<String> = "session_id",
        /// `content_asset_id`: the content asset playing.
        content_asset_id: Option<String> = "content_asset_id",
        /// `content_asset_ids`: the content assets to play (Video Playback Started).
        content_asset_ids: Vec<String> = "content_asset_ids",
        /// `content_pod_id`: the content pod playing.
        content_pod_id: Option<String> = "content_pod_id",
        /// `content_pod_ids`: the content pods to play (Video Playback Started).
        content_pod_ids: Vec<String> = "content_pod_ids",
        /// `ad_asset_id`: the ad asset playing, or a list of them (Video Playback Started).
        ad_asset_id: Option<TextOrList> = "ad_asset_id",
        /// `ad_asset_ids`: the ad assets to play, as the spec's lifecycle example sends them.
        ad_asset_ids: Vec<String> = "ad_asset_ids",
        /// `ad_pod_id`: the ad pod playing, or a list of them (Video Playback Started).
        ad_pod_id: Option<TextOrList> = "ad_pod_id",
        /// `ad_pod_ids`: the ad pods to play, as the spec's lifecycle example sends them.
        ad_pod_ids: Vec<String> = "ad_pod_ids",
        /// `ad_type`: `pre-roll`, `mid-roll` or `post-roll`, or a list of them.
        ad_type: Option<TextOrList> = "ad_type",
        /// `ad_types`: the ad types to play, as the spec's lifecycle example sends them.
        ad_types: Vec<String> = "ad_types",
        /// `position`: the playhead, in seconds, ads included.
        position: Option<f64> = "position",
        /// `seek_position`: where the user seeks to (Video Playback Seek Started).
        seek_position: Option<f64> = "seek_position",
        /// `total_length`: the playback's length in seconds (`null` for a livestream).
        total_length: Option<f64> = "total_length",
        /// `bitrate`: the current kbps.
        bitrate: Option<f64> = "bitrate",
        /// `framerate`: the average fps.
        framerate: Option<f64> = "framerate",
        /// `video_player`: the player's name, e.g. `youtube`.
        video_player: Option<String> = "video_player",
        /// `sound`: the sound level, 0 (muted) to 100.
        sound: Option<f64> = "sound",
        /// `full_screen`: whether the player is full screen.
        full_screen: Option<bool> = "full_screen",
        /// `ad_enabled`: `false` when an ad blocker is on.
        ad_enabled: Option<bool> = "ad_enabled",
        /// `quality`: the video quality, e.g. `hd1080`.
        quality: Option<String> = "quality",
        /// `method`: how the playback was interrupted (Video Playback Interrupted).
        method: Option<String> = "method",
        /// `livestream`: whether the playback is a livestream.
        livestream: Option<bool> = "livestream",
    }
}

view! {
    /// The properties of every content event (Video Content Started, Playing, Completed),
    /// and of an ad event's `content`: the content segment playing.
    Content {
        /// `session_id`: the playback session.
        session_id: Option<String> = "session_id",
        /// `asset_id`: the content asset.
        asset_id: Option<String> = "asset_id",
        /// `pod_id`: the content pod.
        pod_id: Option<String> = "pod_id",
        /// `title`: the content's title.
        title: Option<String> = "title",
        /// `description`: a short description.
        description: Option<String> = "description",
        /// `keywords`: keywords or tags.
        keywords: Vec<String> = "keywords",
        /// `season`: the season number, as text.
        season: Option<String> = "season",
        /// `episode`: the episode number, as text.
        episode: Option<String> = "episode",
        /// `genre`: the genre, e.g. `comedy`.
        genre: Option<String> = "genre",
        /// `program`: the program or show.
        program: Option<String> = "program",
        /// `publisher`: the creator or publisher.
        publisher: Option<String> = "publisher",
        /// `position`: the playhead in the content, in seconds, ads excluded.
        position: Option<f64> = "position",
        /// `total_length`: the content's length in seconds (`null` for a livestream).
        total_length: Option<f64> = "total_length",
        /// `channel`: the channel the content plays on, e.g. `espn`.
        channel: Option<String> = "channel",
        /// `full_episode`: whether the content is a full episode.
        full_episode: Option<bool> = "full_episode",
        /// `livestream`: whether the playback is a livestream.
        livestream: Option<bool> = "livestream",
        /// `airdate`: the original air or publication date (ISO-8601 text, as received).
        airdate: Option<String> = "airdate",
        /// `bitrate`: the current kbps.
        bitrate: Option<f64> = "bitrate",
        /// `framerate`: the average fps.
        framerate: Option<f64> = "framerate",
    }
}

view! {
    /// The properties of every ad event (Video Ad Started, Playing, Completed).
    Ad {
        /// `session_id`: the playback session.
        session_id: Option<String> = "session_id",
        /// `asset_id`: the ad asset.
        asset_id: Option<String> = "asset_id",
        /// `pod_id`: the ad pod.
        pod_id: Option<String> = "pod_id",
        /// `pod_position`: the ad's position in its pod.
        pod_position: Option<f64> = "pod_position",
        /// `pod_length`: the number of ads in the pod.
        pod_length: Option<f64> = "pod_length",
        /// `type`: `pre-roll`, `mid-roll` or `post-roll`.
        kind: Option<String> = "type",
        /// `title`: the ad's title.
        title: Option<String> = "title",
        /// `publisher`: the ad's creator or publisher.
        publisher: Option<String> = "publisher",
        /// `position`: the playhead in the ad, in seconds.
        position: Option<f64> = "position",
        /// `total_length`: the ad's length in seconds.
        total_length: Option<f64> = "total_length",
        /// `load_type`: `linear` or `dynamic`.
        load_type: Option<String> = "load_type",
        /// `content`: the content the ad plays in, for destinations that want it.
        content: Option<Content> = "content",
        /// `quartile`: the quartile reached, 1 to 3 (Video Ad Playing).
        quartile: Option<f64> = "quartile",
    }
}

view! {
    /// "Video Quality Updated": the video quality changed. The spec names these
    /// properties without types; they are read as numbers.
    Quality {
        /// `bitrate`: the kbps.
        bitrate: Option<f64> = "bitrate",
        /// `framerate`: the fps.
        framerate: Option<f64> = "framerate",
        /// `startupTime`: the startup time.
        startup_time: Option<f64> = "startupTime",
        /// `droppedFrames`: the dropped frames.
        dropped_frames: Option<f64> = "droppedFrames",
    }
}

events! {
    /// A Video spec event, by name, as its typed view: `track.spec::<Video>()`. Names
    /// also match in the action-first form Segment's integrations accept ("Started Video
    /// Playback").
    Video {
        /// "Video Playback Started".
        PlaybackStarted(Playback) = "Video Playback Started" | "Started Video Playback",
        /// "Video Playback Paused".
        PlaybackPaused(Playback) = "Video Playback Paused" | "Paused Video Playback",
        /// "Video Playback Interrupted".
        PlaybackInterrupted(Playback) = "Video Playback Interrupted"
            | "Interrupted Video Playback",
        /// "Video Playback Buffer Started".
        PlaybackBufferStarted(Playback) = "Video Playback Buffer Started"
            | "Started Video Playback Buffer",
        /// "Video Playback Buffer Completed".
        PlaybackBufferCompleted(Playback) = "Video Playback Buffer Completed"
            | "Completed Video Playback Buffer",
        /// "Video Playback Seek Started".
        PlaybackSeekStarted(Playback) = "Video Playback Seek Started"
            | "Started Video Playback Seek",
        /// "Video Playback Seek Completed".
        PlaybackSeekCompleted(Playback) = "Video Playback Seek Completed"
            | "Completed Video Playback Seek",
        /// "Video Playback Resumed".
        PlaybackResumed(Playback) = "Video Playback Resumed" | "Resumed Video Playback",
        /// "Video Playback Completed".
        PlaybackCompleted(Playback) = "Video Playback Completed" | "Completed Video Playback",
        /// "Video Playback Exited".
        PlaybackExited(Playback) = "Video Playback Exited",
        /// "Video Content Started".
        ContentStarted(Content) = "Video Content Started" | "Started Video Content",
        /// "Video Content Playing".
        ContentPlaying(Content) = "Video Content Playing" | "Playing Video Content",
        /// "Video Content Completed".
        ContentCompleted(Content) = "Video Content Completed" | "Completed Video Content",
        /// "Video Ad Started".
        AdStarted(Ad) = "Video Ad Started" | "Started Video Ad",
        /// "Video Ad Playing".
        AdPlaying(Ad) = "Video Ad Playing" | "Playing Video Ad",
        /// "Video Ad Completed".
        AdCompleted(Ad) = "Video Ad Completed" | "Completed Video Ad",
        /// "Video Quality Updated".
        QualityUpdated(Quality) = "Video Quality Updated",
    }
}
