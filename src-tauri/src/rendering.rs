//! How the webview draws. With a GPU, WebKitGTK composites the page with OpenGL on it.
//! Without one (virtual machines, remote sessions, Xvfb: no DRM render node) that OpenGL is
//! Mesa's llvmpipe on the CPU, and compositing costs far more than it saves: scrolling a long
//! conversation on the 2-core test machine took about 100 ms a frame composited and about
//! 20 ms painted directly (docs/ARCHITECTURE.md, "Measured"). So without a render node the
//! app turns WebKit's hardware acceleration off; with one, WebKit keeps its own policy.
//! `SOTTO_WEBVIEW_ACCELERATION=on|off` overrides the detection.

use std::ffi::OsStr;
use std::path::Path;

/// The environment variable that overrides [`choose`]'s detection.
pub const OVERRIDE_VAR: &str = "SOTTO_WEBVIEW_ACCELERATION";

/// What the app asks of the webview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceleration {
    /// Leave WebKit's default policy (composite with the GPU when a page benefits).
    WebKitDefault,
    /// Never composite with OpenGL: paint directly.
    Never,
}

/// Chooses the policy from the override (if set to `on` or `off`) or from whether
/// `dri_dir` (normally /dev/dri) holds a GPU render node (`renderD*`).
pub fn choose(override_value: Option<&OsStr>, dri_dir: &Path) -> Acceleration {
    match override_value.and_then(OsStr::to_str) {
        Some("on") => return Acceleration::WebKitDefault,
        Some("off") => return Acceleration::Never,
        _ => {}
    }
    let has_render_node = std::fs::read_dir(dri_dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    if has_render_node {
        Acceleration::WebKitDefault
    } else {
        Acceleration::Never
    }
}

/// Applies [`choose`]'s policy for this machine to the window's webview.
#[cfg(target_os = "linux")]
pub fn install(window: &tauri::WebviewWindow) -> tauri::Result<()> {
    let policy = choose(
        std::env::var_os(OVERRIDE_VAR).as_deref(),
        Path::new("/dev/dri"),
    );
    tracing::debug!(?policy, "webview acceleration");
    if policy == Acceleration::WebKitDefault {
        return Ok(());
    }
    window.with_webview(|webview| {
        use webkit2gtk::{HardwareAccelerationPolicy, SettingsExt, WebViewExt};
        if let Some(settings) = WebViewExt::settings(&webview.inner()) {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    })
}

/// Other platforms' webviews choose well on their own.
#[cfg(not(target_os = "linux"))]
pub fn install(_window: &tauri::WebviewWindow) -> tauri::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_node_keeps_webkits_policy_and_none_turns_compositing_off() {
        let dri = tempfile::tempdir().expect("temp dir");
        assert_eq!(choose(None, dri.path()), Acceleration::Never);
        std::fs::write(dri.path().join("card0"), b"").expect("card");
        assert_eq!(
            choose(None, dri.path()),
            Acceleration::Never,
            "a display card without a render node is not enough"
        );
        std::fs::write(dri.path().join("renderD128"), b"").expect("render node");
        assert_eq!(choose(None, dri.path()), Acceleration::WebKitDefault);
        assert_eq!(
            choose(None, &dri.path().join("missing")),
            Acceleration::Never
        );
    }

    #[test]
    fn the_override_wins_and_other_values_are_ignored() {
        let dri = tempfile::tempdir().expect("temp dir");
        assert_eq!(
            choose(Some(OsStr::new("on")), dri.path()),
            Acceleration::WebKitDefault
        );
        std::fs::write(dri.path().join("renderD128"), b"").expect("render node");
        assert_eq!(
            choose(Some(OsStr::new("off")), dri.path()),
            Acceleration::Never
        );
        assert_eq!(
            choose(Some(OsStr::new("maybe")), dri.path()),
            Acceleration::WebKitDefault
        );
    }
}
