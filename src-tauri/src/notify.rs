//! Desktop notifications for new messages, showing only what the `notifications` privacy
//! setting allows: name and text, name only, or nothing but "New message".

use sotto_client::Client;
use sotto_client::privacy::NotificationDetail;

use crate::error::UiResult;
use crate::events::SottoEvent;
use crate::views::{display_name, parse_contact_id};

/// A notification to show.
#[derive(Clone, PartialEq, Eq)]
pub struct Notice {
    /// First line.
    pub title: String,
    /// Second line (may be empty).
    pub body: String,
}

// The body may be message text: keep it out of logs.
impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice").finish_non_exhaustive()
    }
}

/// What a notification for a message shows at each detail level.
pub fn compose(detail: NotificationDetail, sender: &str, text: &str) -> Notice {
    match detail {
        NotificationDetail::NameAndText => Notice {
            title: sender.to_owned(),
            body: text.to_owned(),
        },
        NotificationDetail::NameOnly => Notice {
            title: sender.to_owned(),
            body: "New message".to_owned(),
        },
        NotificationDetail::Nothing => Notice {
            title: "Sotto".to_owned(),
            body: "New message".to_owned(),
        },
    }
}

/// The notification an event deserves, if any (incoming messages only).
pub fn notice_for(client: &Client, event: &SottoEvent) -> UiResult<Option<Notice>> {
    let SottoEvent::Message { message, .. } = event else {
        return Ok(None);
    };
    if message.outgoing {
        return Ok(None);
    }
    let detail = client.privacy()?.notification_detail;
    let account = parse_contact_id(&message.contact_id)?;
    let name = client
        .store()
        .contact(&account)?
        .map_or_else(|| "Someone".to_owned(), |c| display_name(&c));
    Ok(Some(compose(detail, &name, &message.text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_detail_level_shows_only_what_it_allows() {
        let full = compose(NotificationDetail::NameAndText, "alice", "meet at 6");
        assert_eq!(
            (full.title.as_str(), full.body.as_str()),
            ("alice", "meet at 6")
        );
        let name = compose(NotificationDetail::NameOnly, "alice", "meet at 6");
        assert_eq!(name.title, "alice");
        assert!(!name.body.contains("meet"));
        let nothing = compose(NotificationDetail::Nothing, "alice", "meet at 6");
        assert!(!nothing.title.contains("alice") && !nothing.body.contains("alice"));
        assert!(!nothing.body.contains("meet"));
    }

    #[test]
    fn debug_output_hides_the_text() {
        let n = compose(NotificationDetail::NameAndText, "alice", "secret words");
        assert!(!format!("{n:?}").contains("secret"));
    }
}
