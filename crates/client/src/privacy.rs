//! Privacy settings as one typed model, shared by the desktop app and the CLI.
//!
//! * [`PrivacySettings::default`] is the everyday preset; [`PrivacySettings::hardened`] the
//!   safest one. [`PrivacySettings::apply_hardened`] only ever *tightens* settings and reports
//!   what it changed; [`PrivacySettings::checkup`] lists what is still weaker than hardened,
//!   with a plain-language reason.
//! * [`PrivacySettings::describe`] explains, for every setting, what it protects against.
//! * [`PrivacySettings::get`] / [`PrivacySettings::set`] are the string interface of
//!   `sotto privacy get|set KEY [VALUE]`; values use the same words both ways
//!   (`on`/`off`, `name-and-text`, `1w`, `never`, …).
//! * [`PrivacySettings::to_bytes`] / [`PrivacySettings::from_bytes`] are the storage encoding:
//!   one version byte (`0x01`) followed by a JSON object. Missing fields take their
//!   [`Default`] value so later versions can add settings; unknown fields are ignored.
//!
//! Hardened mode drops message requests from unknown senders ([`MessageRequests::Block`]):
//! a stranger's first message is the cheapest way to harass, phish or probe someone, and
//! Sotto already has a safer way to start a conversation — scanning or sharing a contact
//! invite, or adding a username yourself. The cost (a genuine newcomer cannot reach you until
//! you add them) is shown to the user in the [`SettingChange`] list.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Shortest disappearing-message timer, in seconds.
pub const MIN_DISAPPEARING_SECS: u32 = 5;
/// Longest disappearing-message timer, in seconds (4 weeks).
pub const MAX_DISAPPEARING_SECS: u32 = 4 * WEEK;
/// Longest app-lock timeout, in minutes (1 day).
pub const MAX_APP_LOCK_MINUTES: u32 = 24 * 60;
/// Default disappearing timer of the hardened preset, in seconds (1 week).
pub const HARDENED_DISAPPEARING_SECS: u32 = WEEK;
/// App-lock timeout of the hardened preset, in minutes.
pub const HARDENED_APP_LOCK_MINUTES: u32 = 1;

/// Storage format version written by [`PrivacySettings::to_bytes`].
const FORMAT_VERSION: u8 = 0x01;
/// Stored settings longer than this are refused before parsing.
const MAX_ENCODED_LEN: usize = 16 * 1024;

const MINUTE: u32 = 60;
const HOUR: u32 = 60 * MINUTE;
const DAY: u32 = 24 * HOUR;
const WEEK: u32 = 7 * DAY;

/// How much a notification shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationDetail {
    /// Sender's name and the message text.
    NameAndText,
    /// Sender's name only.
    NameOnly,
    /// Only that something arrived.
    Nothing,
}

/// What happens to a first message from someone who is not a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageRequests {
    /// Kept as a message request, which the user may accept or delete.
    Allow,
    /// Dropped without notice; the sender is not told.
    Block,
}

/// Where the key that opens the local message store is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStorage {
    /// The operating system's keyring: opens automatically once you are logged in.
    Keyring,
    /// Derived from a passphrase typed at every start.
    Passphrase,
}

/// All privacy settings.
///
/// Fields are public for the user interface; [`PrivacySettings::validate`] checks the ranges
/// that the types cannot express, and [`PrivacySettings::set`] / [`PrivacySettings::from_bytes`]
/// never produce out-of-range values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacySettings {
    /// Tell senders when a message reached this device.
    pub delivery_receipts: bool,
    /// Tell senders when you have read their messages.
    pub read_receipts: bool,
    /// Tell the other person while you are typing.
    pub typing_indicators: bool,
    /// Attach a preview when *sending* a link. Previews are only ever fetched by the sender's
    /// device; received messages never cause a fetch.
    pub link_previews: bool,
    /// How much a notification shows.
    pub notification_detail: NotificationDetail,
    /// What happens to first messages from unknown senders.
    pub message_requests: MessageRequests,
    /// Refuse to send to a contact whose identity key changed until the user accepts the new key.
    pub block_on_key_change: bool,
    /// Disappearing timer for new conversations, in seconds; 0 is off, otherwise
    /// [`MIN_DISAPPEARING_SECS`]..=[`MAX_DISAPPEARING_SECS`].
    pub default_disappearing_secs: u32,
    /// Hide the window from screenshots, screen recording and the task switcher.
    pub screen_security: bool,
    /// Lock the app after this many idle minutes (`Some(0)`: as soon as it loses focus);
    /// `None` never locks. At most [`MAX_APP_LOCK_MINUTES`].
    pub app_lock_timeout_minutes: Option<u32>,
    /// Where the store key is kept.
    pub key_storage: KeyStorage,
}

impl Default for PrivacySettings {
    /// Everyday defaults.
    fn default() -> Self {
        Self {
            delivery_receipts: true,
            read_receipts: true,
            typing_indicators: true,
            link_previews: false,
            notification_detail: NotificationDetail::NameAndText,
            message_requests: MessageRequests::Allow,
            block_on_key_change: false,
            default_disappearing_secs: 0,
            screen_security: false,
            app_lock_timeout_minutes: None,
            key_storage: KeyStorage::Keyring,
        }
    }
}

/// One setting's key, label and what it protects against, for help screens and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingInfo {
    /// Key used by [`PrivacySettings::get`] / [`PrivacySettings::set`].
    pub key: &'static str,
    /// Short label for the user interface.
    pub label: &'static str,
    /// Plain-language explanation of what the setting protects against.
    pub protects_against: &'static str,
    /// The values [`PrivacySettings::set`] accepts.
    pub values: &'static str,
}

/// One setting changed by [`PrivacySettings::apply_hardened`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// Setting key.
    pub key: &'static str,
    /// Setting label.
    pub label: &'static str,
    /// Previous value, human-readable.
    pub old: String,
    /// New value, human-readable.
    pub new: String,
}

/// How much a remaining risk matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Leaks a little about your habits.
    Low,
    /// Leaks who you talk to, or exposes old messages.
    Medium,
    /// Can put message text in front of someone else.
    High,
}

/// A setting that is weaker than the hardened preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Risk {
    /// Setting key.
    pub key: &'static str,
    /// Setting label.
    pub label: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The current value, human-readable.
    pub current: String,
    /// Plain-language reason it is risky.
    pub reason: &'static str,
}

/// Why [`PrivacySettings::get`] or [`PrivacySettings::set`] failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SettingError {
    /// No setting has this key.
    #[error("unknown privacy setting")]
    UnknownKey,
    /// The value is not one the setting accepts.
    #[error("invalid value for {key}; expected {expected}")]
    InvalidValue {
        /// Setting key.
        key: &'static str,
        /// The accepted values.
        expected: &'static str,
    },
    /// The value is not an accepted duration.
    #[error("invalid duration for {key}: {reason}")]
    InvalidDuration {
        /// Setting key.
        key: &'static str,
        /// What is wrong with it.
        reason: DurationError,
    },
}

/// Why a duration was refused by [`parse_duration_secs`].
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing given.
    #[error("empty duration")]
    Empty,
    /// Not a whole number followed by a unit (`30s`, `5m`, `2h`, `1d`, `4w`) or `off`.
    #[error("expected a whole number and a unit: s, m, h, d or w (e.g. 30s, 1d), or off")]
    Malformed,
    /// Shorter than the minimum.
    #[error("shorter than the minimum")]
    TooShort,
    /// Longer than the maximum.
    #[error("longer than the maximum")]
    TooLong,
    /// Not a whole number of minutes where minutes are required.
    #[error("not a whole number of minutes")]
    NotWholeMinutes,
}

/// Why stored settings could not be encoded.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SettingsEncodeError {
    /// The settings hold an out-of-range value.
    #[error("privacy settings hold an out-of-range value")]
    Invalid,
    /// Serialisation failed.
    #[error("privacy settings could not be serialised")]
    Serialize,
}

/// Why stored settings could not be read.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SettingsDecodeError {
    /// No bytes.
    #[error("stored privacy settings are empty")]
    Empty,
    /// Longer than any settings this version writes.
    #[error("stored privacy settings are too long")]
    TooLong,
    /// Written by a format version this build does not know.
    #[error("stored privacy settings use unknown format version {0}")]
    UnsupportedVersion(u8),
    /// Not well-formed.
    #[error("stored privacy settings are malformed")]
    Malformed,
    /// Well-formed but holding an out-of-range value.
    #[error("stored privacy settings hold an out-of-range value for {key}")]
    OutOfRange {
        /// Setting key.
        key: &'static str,
    },
}

// Setting keys.
const K_DELIVERY_RECEIPTS: &str = "delivery-receipts";
const K_READ_RECEIPTS: &str = "read-receipts";
const K_TYPING: &str = "typing-indicators";
const K_LINK_PREVIEWS: &str = "link-previews";
const K_NOTIFICATIONS: &str = "notification-detail";
const K_REQUESTS: &str = "message-requests";
const K_KEY_CHANGE: &str = "block-on-key-change";
const K_DISAPPEARING: &str = "disappearing-default";
const K_SCREEN: &str = "screen-security";
const K_APP_LOCK: &str = "app-lock";
const K_KEY_STORAGE: &str = "key-storage";

const V_BOOL: &str = "on | off";
const V_NOTIFICATIONS: &str = "name-and-text | name-only | nothing";
const V_REQUESTS: &str = "allow | block";
const V_DISAPPEARING: &str = "off, or 5s to 4w (e.g. 30s, 5m, 2h, 1d, 1w)";
const V_APP_LOCK: &str = "never, immediately, or whole minutes up to 1d (e.g. 1m, 15m, 1h)";
const V_KEY_STORAGE: &str = "keyring | passphrase";

static SETTINGS: [SettingInfo; 11] = [
    SettingInfo {
        key: K_DELIVERY_RECEIPTS,
        label: "Delivery receipts",
        protects_against: "When on, people you write to can see when their message reached \
            your computer, which shows when you were online. Turn it off so nobody can tell \
            when your computer is connected. You will not see their delivery receipts either.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_READ_RECEIPTS,
        label: "Read receipts",
        protects_against: "When on, people you write to can see exactly when you read their \
            messages, which also shows when you are awake and using your computer. Turn it off \
            so nobody can track your habits this way. You will not see their receipts either.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_TYPING,
        label: "Typing indicators",
        protects_against: "When on, the other person sees when you are typing, even if you \
            delete the message without sending it. Turn it off so nobody learns that you are \
            online right now or that you started to answer.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_LINK_PREVIEWS,
        label: "Link previews",
        protects_against: "When on, your computer visits a website to make a preview of a link \
            you send, so that website learns your internet address and that someone is sharing \
            it. Sotto never fetches previews for links you receive, so people cannot use a link \
            to find out where you are.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_NOTIFICATIONS,
        label: "Notification content",
        protects_against: "Notifications can appear on your screen while someone else is \
            looking at it, and your computer may keep a history of them. Showing less keeps \
            the text of your messages, and who is writing to you, away from onlookers.",
        values: V_NOTIFICATIONS,
    },
    SettingInfo {
        key: K_REQUESTS,
        label: "Messages from unknown people",
        protects_against: "Anyone who knows or guesses your username can send you a first \
            message, which is how harassment, scams and attempts to trick you usually start. \
            Blocking drops these messages; people can still reach you after you add them, for \
            example by scanning each other's invite code.",
        values: V_REQUESTS,
    },
    SettingInfo {
        key: K_KEY_CHANGE,
        label: "Stop sending when a contact's safety number changes",
        protects_against: "A changed safety number usually means your contact got a new \
            computer, but it can also mean someone has taken over their account or is \
            intercepting your conversation. When on, Sotto sends nothing to that contact until \
            you have checked the new safety number and accepted it.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_DISAPPEARING,
        label: "Disappearing messages for new chats",
        protects_against: "Messages that are kept forever can be read by anyone who later gets \
            hold of your computer or your contact's, for example if it is seized, stolen or \
            searched. With a timer, messages are deleted on both sides after that time.",
        values: V_DISAPPEARING,
    },
    SettingInfo {
        key: K_SCREEN,
        label: "Screen security",
        protects_against: "Stops screenshots, screen recordings, screen sharing and the window \
            preview in the task switcher from showing your conversations, including by other \
            programs running on your computer.",
        values: V_BOOL,
    },
    SettingInfo {
        key: K_APP_LOCK,
        label: "App lock",
        protects_against: "If you step away from your computer while it is unlocked, anyone \
            nearby could open Sotto and read your messages. App lock asks for your passphrase \
            again after you have been away for the chosen time.",
        values: V_APP_LOCK,
    },
    SettingInfo {
        key: K_KEY_STORAGE,
        label: "How your messages are locked on this computer",
        protects_against: "With the system keyring, anyone who can log in to your computer \
            account, or a harmful program running as you, can open your messages without \
            knowing anything else. With a passphrase, your messages stay locked until you type \
            it, even if someone has your computer and your login password.",
        values: V_KEY_STORAGE,
    },
];

fn info(key: &'static str) -> &'static SettingInfo {
    // Every key constant is in SETTINGS; the fallback only keeps this total.
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .unwrap_or(&SETTINGS[0])
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

fn human_on_off(v: bool) -> String {
    if v { "On" } else { "Off" }.to_owned()
}

impl NotificationDetail {
    fn as_key(self) -> &'static str {
        match self {
            Self::NameAndText => "name-and-text",
            Self::NameOnly => "name-only",
            Self::Nothing => "nothing",
        }
    }

    fn human(self) -> &'static str {
        match self {
            Self::NameAndText => "Name and message",
            Self::NameOnly => "Name only",
            Self::Nothing => "No name or message",
        }
    }
}

impl MessageRequests {
    fn as_key(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Block => "block",
        }
    }

    fn human(self) -> &'static str {
        match self {
            Self::Allow => "Keep as message requests",
            Self::Block => "Drop",
        }
    }
}

impl KeyStorage {
    fn as_key(self) -> &'static str {
        match self {
            Self::Keyring => "keyring",
            Self::Passphrase => "passphrase",
        }
    }

    fn human(self) -> &'static str {
        match self {
            Self::Keyring => "System keyring",
            Self::Passphrase => "Passphrase",
        }
    }
}

fn human_app_lock(v: Option<u32>) -> String {
    match v {
        None => "Never".to_owned(),
        Some(0) => "Immediately".to_owned(),
        Some(m) => format!("After {}", human_duration_secs(m.saturating_mul(MINUTE))),
    }
}

fn human_disappearing(secs: u32) -> String {
    if secs == 0 {
        "Off".to_owned()
    } else {
        human_duration_secs(secs)
    }
}

/// "1 week", "90 minutes", "5 seconds": the largest unit that divides `secs` exactly.
fn human_duration_secs(secs: u32) -> String {
    let (n, unit) = largest_unit(secs);
    let name = match unit {
        'w' => "week",
        'd' => "day",
        'h' => "hour",
        'm' => "minute",
        _ => "second",
    };
    if n == 1 {
        format!("1 {name}")
    } else {
        format!("{n} {name}s")
    }
}

fn largest_unit(secs: u32) -> (u32, char) {
    for (size, unit) in [(WEEK, 'w'), (DAY, 'd'), (HOUR, 'h'), (MINUTE, 'm')] {
        if secs != 0 && secs.is_multiple_of(size) {
            return (secs / size, unit);
        }
    }
    (secs, 's')
}

/// Parses an unbounded `<number><unit>` duration into seconds; `0` needs no unit.
fn parse_raw_duration(input: &str) -> Result<u32, DurationError> {
    let s = input.trim().to_ascii_lowercase();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    if number.is_empty() {
        return Err(DurationError::Malformed);
    }
    let Ok(n) = number.parse::<u64>() else {
        // Only digits, so the parse fails only on overflow.
        return Err(DurationError::TooLong);
    };
    let multiplier: u64 = match unit.trim() {
        "" if n == 0 => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => MINUTE.into(),
        "h" | "hour" | "hours" => HOUR.into(),
        "d" | "day" | "days" => DAY.into(),
        "w" | "week" | "weeks" => WEEK.into(),
        _ => return Err(DurationError::Malformed),
    };
    let secs = n.checked_mul(multiplier).ok_or(DurationError::TooLong)?;
    u32::try_from(secs).map_err(|_| DurationError::TooLong)
}

/// Parses a disappearing-message timer: `off` or `0` (returns 0), or a whole number with a unit
/// — `s`, `m`, `h`, `d`, `w` (also `sec`, `min`, `hour`, `day`, `week` and plurals) — between
/// 5 seconds and 4 weeks (2,419,200 s). Case and surrounding spaces are ignored.
pub fn parse_duration_secs(input: &str) -> Result<u32, DurationError> {
    let trimmed = input.trim();
    if trimmed.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let secs = parse_raw_duration(trimmed)?;
    if secs == 0 {
        Ok(0)
    } else if secs < MIN_DISAPPEARING_SECS {
        Err(DurationError::TooShort)
    } else if secs > MAX_DISAPPEARING_SECS {
        Err(DurationError::TooLong)
    } else {
        Ok(secs)
    }
}

/// Formats seconds the way [`parse_duration_secs`] reads them: `off` for 0, otherwise the
/// largest unit that divides exactly (`30s`, `90m`, `1w`).
pub fn format_duration_secs(secs: u32) -> String {
    if secs == 0 {
        return "off".to_owned();
    }
    let (n, unit) = largest_unit(secs);
    format!("{n}{unit}")
}

fn parse_app_lock(input: &str) -> Result<Option<u32>, DurationError> {
    let s = input.trim();
    if s.eq_ignore_ascii_case("never") || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    if s.eq_ignore_ascii_case("immediately") {
        return Ok(Some(0));
    }
    let secs = parse_raw_duration(s)?;
    if !secs.is_multiple_of(MINUTE) {
        return Err(DurationError::NotWholeMinutes);
    }
    let minutes = secs / MINUTE;
    if minutes > MAX_APP_LOCK_MINUTES {
        return Err(DurationError::TooLong);
    }
    Ok(Some(minutes))
}

fn format_app_lock(v: Option<u32>) -> String {
    match v {
        None => "never".to_owned(),
        Some(0) => "immediately".to_owned(),
        Some(m) => format_duration_secs(m.saturating_mul(MINUTE)),
    }
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, SettingError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(SettingError::InvalidValue {
            key,
            expected: V_BOOL,
        }),
    }
}

/// Maps a user-typed key (any case, `_` or `-`) to its canonical constant.
fn canonical_key(key: &str) -> Result<&'static str, SettingError> {
    let wanted = key.trim().to_ascii_lowercase().replace('_', "-");
    SETTINGS
        .iter()
        .map(|s| s.key)
        .find(|k| *k == wanted)
        .ok_or(SettingError::UnknownKey)
}

fn disappearing_in_range(secs: u32) -> bool {
    secs == 0 || (MIN_DISAPPEARING_SECS..=MAX_DISAPPEARING_SECS).contains(&secs)
}

impl PrivacySettings {
    /// The safest preset: nothing about your activity is shared, notifications show nothing,
    /// unknown senders are dropped, sending stops on a key change, new chats disappear after a
    /// week, the window is hidden from capture, the app locks after a minute and the store key
    /// needs a passphrase.
    pub fn hardened() -> Self {
        Self {
            delivery_receipts: false,
            read_receipts: false,
            typing_indicators: false,
            link_previews: false,
            notification_detail: NotificationDetail::Nothing,
            message_requests: MessageRequests::Block,
            block_on_key_change: true,
            default_disappearing_secs: HARDENED_DISAPPEARING_SECS,
            screen_security: true,
            app_lock_timeout_minutes: Some(HARDENED_APP_LOCK_MINUTES),
            key_storage: KeyStorage::Passphrase,
        }
    }

    /// Every setting with its key, label and what it protects against, in display order.
    pub fn describe() -> &'static [SettingInfo] {
        &SETTINGS
    }

    /// Checks the ranges the field types cannot express; `Err` names the offending key.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !disappearing_in_range(self.default_disappearing_secs) {
            return Err(K_DISAPPEARING);
        }
        if self
            .app_lock_timeout_minutes
            .is_some_and(|m| m > MAX_APP_LOCK_MINUTES)
        {
            return Err(K_APP_LOCK);
        }
        Ok(())
    }

    /// Whether every setting is at least as strict as [`PrivacySettings::hardened`]
    /// (equivalently, [`PrivacySettings::checkup`] finds nothing).
    pub fn is_hardened(&self) -> bool {
        self.checkup().is_empty()
    }

    /// Tightens every setting that is weaker than the hardened preset, leaving stricter
    /// choices alone (a 1-day timer stays 1 day), and returns what changed.
    pub fn apply_hardened(&mut self) -> Vec<SettingChange> {
        let weak: Vec<&'static str> = self.checkup().iter().map(|r| r.key).collect();
        let hardened = Self::hardened();
        let mut changes = Vec::with_capacity(weak.len());
        for key in weak {
            let old = self.human_value(key);
            match key {
                K_DELIVERY_RECEIPTS => self.delivery_receipts = hardened.delivery_receipts,
                K_READ_RECEIPTS => self.read_receipts = hardened.read_receipts,
                K_TYPING => self.typing_indicators = hardened.typing_indicators,
                K_LINK_PREVIEWS => self.link_previews = hardened.link_previews,
                K_NOTIFICATIONS => self.notification_detail = hardened.notification_detail,
                K_REQUESTS => self.message_requests = hardened.message_requests,
                K_KEY_CHANGE => self.block_on_key_change = hardened.block_on_key_change,
                K_DISAPPEARING => {
                    self.default_disappearing_secs = hardened.default_disappearing_secs;
                }
                K_SCREEN => self.screen_security = hardened.screen_security,
                K_APP_LOCK => self.app_lock_timeout_minutes = hardened.app_lock_timeout_minutes,
                _ => self.key_storage = hardened.key_storage,
            }
            changes.push(SettingChange {
                key,
                label: info(key).label,
                old,
                new: self.human_value(key),
            });
        }
        changes
    }

    /// Lists the settings that are still weaker than the hardened preset, in display order,
    /// each with a plain-language reason.
    pub fn checkup(&self) -> Vec<Risk> {
        let mut risks = Vec::new();
        let mut add = |key: &'static str, severity: Severity, reason: &'static str| {
            risks.push(Risk {
                key,
                label: info(key).label,
                severity,
                current: self.human_value(key),
                reason,
            });
        };
        if self.delivery_receipts {
            add(
                K_DELIVERY_RECEIPTS,
                Severity::Low,
                "People you write to can see when their messages reach your computer, and so \
                 when you are online.",
            );
        }
        if self.read_receipts {
            add(
                K_READ_RECEIPTS,
                Severity::Low,
                "People you write to can see when you read their messages, and so when you \
                 are awake and at your computer.",
            );
        }
        if self.typing_indicators {
            add(
                K_TYPING,
                Severity::Low,
                "People can see when you are typing to them, even if you never send it.",
            );
        }
        if self.link_previews {
            add(
                K_LINK_PREVIEWS,
                Severity::Low,
                "Websites you send links to learn your internet address when the preview is \
                 made.",
            );
        }
        match self.notification_detail {
            NotificationDetail::NameAndText => add(
                K_NOTIFICATIONS,
                Severity::High,
                "The text of your messages pops up on screen, where anyone nearby can read it, \
                 and may stay in your computer's notification history.",
            ),
            NotificationDetail::NameOnly => add(
                K_NOTIFICATIONS,
                Severity::Medium,
                "Anyone who sees your screen learns who is writing to you.",
            ),
            NotificationDetail::Nothing => {}
        }
        if self.message_requests == MessageRequests::Allow {
            add(
                K_REQUESTS,
                Severity::Low,
                "Strangers who know your username can send you messages, which is how \
                 harassment and scams usually start.",
            );
        }
        if !self.block_on_key_change {
            add(
                K_KEY_CHANGE,
                Severity::Medium,
                "If someone takes over a contact's account, your next messages could go to \
                 them before you notice the warning.",
            );
        }
        if self.default_disappearing_secs == 0 {
            add(
                K_DISAPPEARING,
                Severity::Medium,
                "New conversations are kept forever, so anyone who later gets hold of your \
                 computer or your contact's can read them.",
            );
        } else if self.default_disappearing_secs > HARDENED_DISAPPEARING_SECS {
            add(
                K_DISAPPEARING,
                Severity::Low,
                "Messages in new conversations are kept for more than a week.",
            );
        }
        if !self.screen_security {
            add(
                K_SCREEN,
                Severity::Low,
                "Screenshots, screen recordings, screen sharing and other programs can capture \
                 your conversations.",
            );
        }
        match self.app_lock_timeout_minutes {
            None => add(
                K_APP_LOCK,
                Severity::Medium,
                "Anyone who uses your computer while it is unlocked can open Sotto and read \
                 everything.",
            ),
            Some(m) if m > HARDENED_APP_LOCK_MINUTES => add(
                K_APP_LOCK,
                Severity::Low,
                "Sotto stays open for a while after you step away from your computer.",
            ),
            Some(_) => {}
        }
        if self.key_storage == KeyStorage::Keyring {
            add(
                K_KEY_STORAGE,
                Severity::Medium,
                "Anyone who can log in to your computer account, or a harmful program running \
                 as you, can open your messages without a passphrase.",
            );
        }
        risks
    }

    /// The value of `key` as the CLI shows it; [`PrivacySettings::set`] accepts the same text.
    pub fn get(&self, key: &str) -> Result<String, SettingError> {
        let key = canonical_key(key)?;
        Ok(match key {
            K_DELIVERY_RECEIPTS => on_off(self.delivery_receipts).to_owned(),
            K_READ_RECEIPTS => on_off(self.read_receipts).to_owned(),
            K_TYPING => on_off(self.typing_indicators).to_owned(),
            K_LINK_PREVIEWS => on_off(self.link_previews).to_owned(),
            K_NOTIFICATIONS => self.notification_detail.as_key().to_owned(),
            K_REQUESTS => self.message_requests.as_key().to_owned(),
            K_KEY_CHANGE => on_off(self.block_on_key_change).to_owned(),
            K_DISAPPEARING => format_duration_secs(self.default_disappearing_secs),
            K_SCREEN => on_off(self.screen_security).to_owned(),
            K_APP_LOCK => format_app_lock(self.app_lock_timeout_minutes),
            _ => self.key_storage.as_key().to_owned(),
        })
    }

    /// Sets `key` from text (see [`SettingInfo::values`]); nothing changes on error.
    ///
    /// Changing `key-storage` only records the choice: re-locking the store with the new
    /// method is the caller's job.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), SettingError> {
        let key = canonical_key(key)?;
        let word = value.trim().to_ascii_lowercase();
        let invalid = |expected| SettingError::InvalidValue { key, expected };
        match key {
            K_DELIVERY_RECEIPTS => self.delivery_receipts = parse_bool(key, value)?,
            K_READ_RECEIPTS => self.read_receipts = parse_bool(key, value)?,
            K_TYPING => self.typing_indicators = parse_bool(key, value)?,
            K_LINK_PREVIEWS => self.link_previews = parse_bool(key, value)?,
            K_KEY_CHANGE => self.block_on_key_change = parse_bool(key, value)?,
            K_SCREEN => self.screen_security = parse_bool(key, value)?,
            K_NOTIFICATIONS => {
                self.notification_detail = match word.as_str() {
                    "name-and-text" => NotificationDetail::NameAndText,
                    "name-only" => NotificationDetail::NameOnly,
                    "nothing" => NotificationDetail::Nothing,
                    _ => return Err(invalid(V_NOTIFICATIONS)),
                }
            }
            K_REQUESTS => {
                self.message_requests = match word.as_str() {
                    "allow" => MessageRequests::Allow,
                    "block" => MessageRequests::Block,
                    _ => return Err(invalid(V_REQUESTS)),
                }
            }
            K_DISAPPEARING => {
                self.default_disappearing_secs = parse_duration_secs(value)
                    .map_err(|reason| SettingError::InvalidDuration { key, reason })?;
            }
            K_APP_LOCK => {
                self.app_lock_timeout_minutes = parse_app_lock(value)
                    .map_err(|reason| SettingError::InvalidDuration { key, reason })?;
            }
            _ => {
                self.key_storage = match word.as_str() {
                    "keyring" => KeyStorage::Keyring,
                    "passphrase" => KeyStorage::Passphrase,
                    _ => return Err(invalid(V_KEY_STORAGE)),
                }
            }
        }
        Ok(())
    }

    /// The value of a (canonical) key in words for people, e.g. "After 5 minutes".
    fn human_value(&self, key: &'static str) -> String {
        match key {
            K_DELIVERY_RECEIPTS => human_on_off(self.delivery_receipts),
            K_READ_RECEIPTS => human_on_off(self.read_receipts),
            K_TYPING => human_on_off(self.typing_indicators),
            K_LINK_PREVIEWS => human_on_off(self.link_previews),
            K_NOTIFICATIONS => self.notification_detail.human().to_owned(),
            K_REQUESTS => self.message_requests.human().to_owned(),
            K_KEY_CHANGE => human_on_off(self.block_on_key_change),
            K_DISAPPEARING => human_disappearing(self.default_disappearing_secs),
            K_SCREEN => human_on_off(self.screen_security),
            K_APP_LOCK => human_app_lock(self.app_lock_timeout_minutes),
            _ => self.key_storage.human().to_owned(),
        }
    }

    /// Storage encoding: `0x01 || JSON`. Fails only on out-of-range values.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SettingsEncodeError> {
        self.validate().map_err(|_| SettingsEncodeError::Invalid)?;
        let mut out = vec![FORMAT_VERSION];
        serde_json::to_writer(&mut out, self).map_err(|_| SettingsEncodeError::Serialize)?;
        Ok(out)
    }

    /// Reads [`PrivacySettings::to_bytes`] output. Missing fields take their default value;
    /// unknown fields are ignored.
    ///
    /// On error, do not silently fall back to [`PrivacySettings::default`], which is less
    /// private than what the user may have chosen: tell the user.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SettingsDecodeError> {
        let (&version, body) = bytes.split_first().ok_or(SettingsDecodeError::Empty)?;
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(SettingsDecodeError::TooLong);
        }
        if version != FORMAT_VERSION {
            return Err(SettingsDecodeError::UnsupportedVersion(version));
        }
        let settings: Self =
            serde_json::from_slice(body).map_err(|_| SettingsDecodeError::Malformed)?;
        settings
            .validate()
            .map_err(|key| SettingsDecodeError::OutOfRange { key })?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_table() {
        let ok: &[(&str, u32)] = &[
            ("off", 0),
            ("OFF", 0),
            ("0", 0),
            ("0s", 0),
            ("5s", 5),
            ("30s", 30),
            (" 30s ", 30),
            ("5m", 300),
            ("2h", 7_200),
            ("1d", 86_400),
            ("1w", 604_800),
            ("4w", 2_419_200),
            ("28d", 2_419_200),
            ("2419200s", 2_419_200),
            ("10 min", 600),
            ("3 Days", 259_200),
            ("1week", 604_800),
        ];
        for (input, want) in ok {
            assert_eq!(parse_duration_secs(input), Ok(*want), "{input}");
        }
        let bad: &[(&str, DurationError)] = &[
            ("", DurationError::Empty),
            ("   ", DurationError::Empty),
            ("30", DurationError::Malformed),
            ("s", DurationError::Malformed),
            ("-5s", DurationError::Malformed),
            ("1.5h", DurationError::Malformed),
            ("5x", DurationError::Malformed),
            ("5s5", DurationError::Malformed),
            ("1h30m", DurationError::Malformed),
            ("on", DurationError::Malformed),
            ("4s", DurationError::TooShort),
            ("1s", DurationError::TooShort),
            ("2419201s", DurationError::TooLong),
            ("5w", DurationError::TooLong),
            ("29d", DurationError::TooLong),
            ("99999999999999999999999w", DurationError::TooLong),
            ("4294967296s", DurationError::TooLong),
            ("18446744073709551615w", DurationError::TooLong),
        ];
        for (input, want) in bad {
            assert_eq!(parse_duration_secs(input), Err(*want), "{input:?}");
        }
    }

    #[test]
    fn format_duration_table_and_round_trip() {
        let table: &[(u32, &str)] = &[
            (0, "off"),
            (5, "5s"),
            (90, "90s"),
            (300, "5m"),
            (5_400, "90m"),
            (7_200, "2h"),
            (86_400, "1d"),
            (172_800, "2d"),
            (604_800, "1w"),
            (2_419_200, "4w"),
            (2_419_199, "2419199s"),
        ];
        for (secs, want) in table {
            assert_eq!(format_duration_secs(*secs), *want);
            assert_eq!(parse_duration_secs(want), Ok(*secs));
        }
        for secs in (MIN_DISAPPEARING_SECS..=MAX_DISAPPEARING_SECS).step_by(997) {
            assert_eq!(parse_duration_secs(&format_duration_secs(secs)), Ok(secs));
        }
    }

    #[test]
    fn presets() {
        let d = PrivacySettings::default();
        assert!(d.read_receipts && d.typing_indicators && !d.link_previews);
        assert_eq!(d.notification_detail, NotificationDetail::NameAndText);
        assert_eq!(d.message_requests, MessageRequests::Allow);
        assert!(!d.block_on_key_change && !d.screen_security);
        assert_eq!(d.default_disappearing_secs, 0);
        assert_eq!(d.app_lock_timeout_minutes, None);
        assert_eq!(d.key_storage, KeyStorage::Keyring);
        assert!(!d.is_hardened());

        let h = PrivacySettings::hardened();
        assert!(h.is_hardened());
        assert!(h.checkup().is_empty());
        assert_eq!(h.validate(), Ok(()));
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn apply_hardened_reports_changes_and_reaches_hardened() {
        let mut s = PrivacySettings::default();
        let changes = s.apply_hardened();
        assert_eq!(s, PrivacySettings::hardened());
        // Link previews are already off by default: ten changes.
        assert_eq!(changes.len(), 10);
        assert!(changes.iter().all(|c| c.old != c.new));
        assert!(!changes.iter().any(|c| c.key == "link-previews"));
        let timer = changes
            .iter()
            .find(|c| c.key == "disappearing-default")
            .unwrap();
        assert_eq!(timer.old, "Off");
        assert_eq!(timer.new, "1 week");
        assert_eq!(timer.label, "Disappearing messages for new chats");
        let lock = changes.iter().find(|c| c.key == "app-lock").unwrap();
        assert_eq!(
            (lock.old.as_str(), lock.new.as_str()),
            ("Never", "After 1 minute")
        );
        // Idempotent.
        assert!(s.apply_hardened().is_empty());
    }

    #[test]
    fn apply_hardened_keeps_stricter_choices() {
        let mut s = PrivacySettings::default();
        s.set("disappearing-default", "1d").unwrap();
        s.set("app-lock", "immediately").unwrap();
        let changes = s.apply_hardened();
        assert_eq!(s.default_disappearing_secs, 86_400);
        assert_eq!(s.app_lock_timeout_minutes, Some(0));
        assert!(s.is_hardened());
        assert!(
            !changes
                .iter()
                .any(|c| c.key == "disappearing-default" || c.key == "app-lock")
        );

        // A longer timer or later lock is tightened.
        let mut s = PrivacySettings::hardened();
        s.set("disappearing-default", "4w").unwrap();
        s.set("app-lock", "15m").unwrap();
        assert!(!s.is_hardened());
        let changes = s.apply_hardened();
        assert_eq!(changes.len(), 2);
        assert_eq!(s, PrivacySettings::hardened());
    }

    #[test]
    fn checkup_lists_weak_settings_with_reasons() {
        let risks = PrivacySettings::default().checkup();
        let keys: Vec<_> = risks.iter().map(|r| r.key).collect();
        assert_eq!(
            keys,
            [
                "delivery-receipts",
                "read-receipts",
                "typing-indicators",
                "notification-detail",
                "message-requests",
                "block-on-key-change",
                "disappearing-default",
                "screen-security",
                "app-lock",
                "key-storage",
            ]
        );
        assert_eq!(risks.len(), 10);
        assert!(
            risks
                .iter()
                .all(|r| !r.reason.is_empty() && !r.current.is_empty())
        );
        let notif = risks
            .iter()
            .find(|r| r.key == "notification-detail")
            .unwrap();
        assert_eq!(notif.severity, Severity::High);

        let mut s = PrivacySettings::hardened();
        s.notification_detail = NotificationDetail::NameOnly;
        s.link_previews = true;
        let risks = s.checkup();
        assert_eq!(risks.len(), 2);
        assert_eq!(risks[0].key, "link-previews");
        assert_eq!(risks[1].severity, Severity::Medium);
    }

    #[test]
    fn get_set_round_trip_for_every_key() {
        let mut s = PrivacySettings::default();
        let h = PrivacySettings::hardened();
        for info in PrivacySettings::describe() {
            let value = h.get(info.key).unwrap();
            s.set(info.key, &value).unwrap();
            assert_eq!(s.get(info.key).unwrap(), value);
        }
        assert_eq!(s, h);
        assert_eq!(PrivacySettings::describe().len(), 11);
        for info in PrivacySettings::describe() {
            assert!(!info.label.is_empty() && !info.protects_against.is_empty());
        }
    }

    #[test]
    fn set_table() {
        let mut s = PrivacySettings::default();
        let ok: &[(&str, &str, &str)] = &[
            ("read-receipts", "off", "off"),
            ("READ_RECEIPTS", "On", "on"),
            ("typing-indicators", "false", "off"),
            ("link-previews", "yes", "on"),
            ("notification-detail", "name-only", "name-only"),
            ("notification-detail", "Nothing", "nothing"),
            ("message-requests", "block", "block"),
            ("block-on-key-change", "on", "on"),
            ("disappearing-default", "30s", "30s"),
            ("disappearing-default", "168h", "1w"),
            ("disappearing-default", "off", "off"),
            ("screen-security", "on", "on"),
            ("app-lock", "5m", "5m"),
            ("app-lock", "1h", "1h"),
            ("app-lock", "1d", "1d"),
            ("app-lock", "0", "immediately"),
            ("app-lock", "never", "never"),
            ("key-storage", "passphrase", "passphrase"),
        ];
        for (key, value, shown) in ok {
            s.set(key, value).unwrap();
            assert_eq!(s.get(key).unwrap(), *shown, "{key} {value}");
        }

        let before = s.clone();
        assert_eq!(s.set("colour", "on"), Err(SettingError::UnknownKey));
        assert_eq!(s.get("colour"), Err(SettingError::UnknownKey));
        assert_eq!(
            s.set("read-receipts", "maybe"),
            Err(SettingError::InvalidValue {
                key: "read-receipts",
                expected: "on | off"
            })
        );
        assert!(matches!(
            s.set("notification-detail", "all"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert!(matches!(
            s.set("message-requests", "on"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert!(matches!(
            s.set("key-storage", "tpm"),
            Err(SettingError::InvalidValue { .. })
        ));
        assert_eq!(
            s.set("disappearing-default", "1s"),
            Err(SettingError::InvalidDuration {
                key: "disappearing-default",
                reason: DurationError::TooShort
            })
        );
        assert_eq!(
            s.set("app-lock", "90s"),
            Err(SettingError::InvalidDuration {
                key: "app-lock",
                reason: DurationError::NotWholeMinutes
            })
        );
        assert_eq!(
            s.set("app-lock", "2d"),
            Err(SettingError::InvalidDuration {
                key: "app-lock",
                reason: DurationError::TooLong
            })
        );
        assert_eq!(s, before);
        // Error text names the key, never the rejected value.
        let msg = s
            .set("read-receipts", "secret-ish")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("secret-ish"));
    }

    #[test]
    fn storage_round_trip() {
        for s in [PrivacySettings::default(), PrivacySettings::hardened()] {
            let bytes = s.to_bytes().unwrap();
            assert_eq!(bytes[0], 0x01);
            assert_eq!(PrivacySettings::from_bytes(&bytes), Ok(s));
        }
        let mut s = PrivacySettings::hardened();
        s.app_lock_timeout_minutes = None;
        s.default_disappearing_secs = 0;
        assert_eq!(
            PrivacySettings::from_bytes(&s.to_bytes().unwrap()),
            Ok(s.clone())
        );
        s.default_disappearing_secs = 3;
        assert_eq!(s.to_bytes(), Err(SettingsEncodeError::Invalid));
    }

    #[test]
    fn storage_missing_unknown_and_bad_input() {
        // Missing fields take defaults; unknown fields are ignored.
        let partial = b"\x01{\"read_receipts\":false,\"future_setting\":7}";
        let s = PrivacySettings::from_bytes(partial).unwrap();
        assert!(!s.read_receipts);
        assert_eq!(
            s,
            PrivacySettings {
                read_receipts: false,
                ..PrivacySettings::default()
            }
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x01{}"),
            Ok(PrivacySettings::default())
        );

        assert_eq!(
            PrivacySettings::from_bytes(b""),
            Err(SettingsDecodeError::Empty)
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x02{}"),
            Err(SettingsDecodeError::UnsupportedVersion(2))
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x01{"),
            Err(SettingsDecodeError::Malformed)
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x01{\"key_storage\":\"tpm\"}"),
            Err(SettingsDecodeError::Malformed)
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x01{\"default_disappearing_secs\":4}"),
            Err(SettingsDecodeError::OutOfRange {
                key: "disappearing-default"
            })
        );
        assert_eq!(
            PrivacySettings::from_bytes(b"\x01{\"app_lock_timeout_minutes\":1441}"),
            Err(SettingsDecodeError::OutOfRange { key: "app-lock" })
        );
        let mut long = vec![0x01];
        long.resize(MAX_ENCODED_LEN + 1, b' ');
        assert_eq!(
            PrivacySettings::from_bytes(&long),
            Err(SettingsDecodeError::TooLong)
        );
    }

    #[test]
    fn enum_storage_names_are_stable() {
        let json = serde_json::to_string(&PrivacySettings::hardened()).unwrap();
        for needle in [
            "\"notification_detail\":\"nothing\"",
            "\"message_requests\":\"block\"",
            "\"key_storage\":\"passphrase\"",
            "\"app_lock_timeout_minutes\":1",
            "\"default_disappearing_secs\":604800",
        ] {
            assert!(json.contains(needle), "{needle} in {json}");
        }
    }
}
