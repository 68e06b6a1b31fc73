//! How the webview draws. With a GPU, WebKitGTK composites the page with OpenGL on it.
//! Without one (virtual machines, remote sessions, Xvfb: no DRM render node) that OpenGL is
//! Mesa's llvmpipe on the CPU, and compositing costs far more than it saves: scrolling a long
//! conversation on the 2-core test machine took about 100 ms a frame composited and about
//! 20 ms painted directly (docs/ARCHITECTURE.md, "Measured"). So without a render node the
//! app turns WebKit's compositing off; with one, WebKit keeps its own policy.
//! `SOTTO_WEBVIEW_ACCELERATION=on|off` overrides the detection.
//!
//! WebKitGTK takes that switch from its environment when it starts: setting the webview's
//! hardware-acceleration policy once the page exists was tried and left scrolling as slow as
//! composited (about 80 ms a frame), so the switch is set before anything else runs.

use std::ffi::OsStr;
use std::path::Path;

/// The environment variable that overrides [`choose`]'s detection.
pub const OVERRIDE_VAR: &str = "SOTTO_WEBVIEW_ACCELERATION";
/// WebKitGTK's own switch: set, it paints without compositing.
const WEBKIT_SWITCH: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

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

/// Applies [`choose`]'s policy for this machine to this process, for the webviews it will
/// create. A switch the person set themselves is left alone.
///
/// # Safety
/// Writes the process environment: no other thread may be running yet.
#[allow(unsafe_code)]
pub unsafe fn configure_process() {
    let policy = choose(
        std::env::var_os(OVERRIDE_VAR).as_deref(),
        Path::new("/dev/dri"),
    );
    // Only WebKitGTK reads the switch; other platforms' webviews choose well on their own.
    let webkitgtk = cfg!(target_os = "linux");
    if webkitgtk && policy == Acceleration::Never && std::env::var_os(WEBKIT_SWITCH).is_none() {
        // SAFETY: the caller guarantees that no other thread exists to read the environment.
        unsafe { std::env::set_var(WEBKIT_SWITCH, "1") };
    }
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
