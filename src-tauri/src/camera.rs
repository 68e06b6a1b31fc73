//! Camera access for scanning safety-number QR codes. WebKitGTK denies getUserMedia silently
//! unless the embedder answers its permission request, so the app answers it here: the camera
//! alone is allowed; microphone and every other permission (location, notifications from the
//! page, …) are denied.

/// What the page asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionKind {
    /// Video only.
    Camera,
    /// Audio, alone or with video.
    Microphone,
    /// Anything that is not a media capture request.
    Other,
}

/// Classifies a media capture request.
pub fn classify_media(video: bool, audio: bool) -> PermissionKind {
    match (video, audio) {
        (true, false) => PermissionKind::Camera,
        (_, true) => PermissionKind::Microphone,
        (false, false) => PermissionKind::Other,
    }
}

/// Whether the app grants it.
pub fn allowed(kind: PermissionKind) -> bool {
    kind == PermissionKind::Camera
}

/// Answers the webview's permission requests with [`allowed`] and enables media capture.
#[cfg(target_os = "linux")]
pub fn install(window: &tauri::WebviewWindow) -> tauri::Result<()> {
    window.with_webview(|webview| {
        use webkit2gtk::glib::prelude::Cast;
        use webkit2gtk::{
            PermissionRequestExt, SettingsExt, UserMediaPermissionRequest,
            UserMediaPermissionRequestExt, WebViewExt,
        };
        let view = webview.inner();
        if let Some(settings) = WebViewExt::settings(&view) {
            settings.set_enable_media_stream(true);
        }
        view.connect_permission_request(|_, request| {
            let kind = request
                .downcast_ref::<UserMediaPermissionRequest>()
                .map_or(PermissionKind::Other, |media| {
                    classify_media(media.is_for_video_device(), media.is_for_audio_device())
                });
            if allowed(kind) {
                request.allow();
            } else {
                request.deny();
            }
            true
        });
    })
}

/// Other platforms ask the user themselves.
#[cfg(not(target_os = "linux"))]
pub fn install(_window: &tauri::WebviewWindow) -> tauri::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_camera_alone_is_granted() {
        assert!(allowed(classify_media(true, false)));
        assert!(
            !allowed(classify_media(true, true)),
            "no microphone with it"
        );
        assert!(!allowed(classify_media(false, true)));
        assert!(!allowed(classify_media(false, false)));
        assert!(!allowed(PermissionKind::Other));
    }
}
