//! QR codes as images, for the safety-number verification payload and contact invites
//! (`sotto_protocol::safety::ScannableFingerprint::encode`, `sotto_protocol::qr::ContactInvite`).
//!
//! Payloads are arbitrary bytes, always written in QR *byte mode* and read back as raw bytes,
//! never as text, so binary payloads survive unchanged.
//!
//! * [`encode_png`]: black on white, medium error correction, a quiet zone of
//!   [`QUIET_ZONE_MODULES`] modules and [`MODULE_PX`] pixels per module, as a 1-bit
//!   greyscale PNG.
//! * [`decode_image`] (PNG or JPEG bytes, e.g. from a file picker or the clipboard),
//!   [`decode_image_file`], [`decode_png`] and [`decode_luma`] (a raw greyscale camera frame)
//!   find and read a code. The format is told by its magic bytes, never by a file name. PNG
//!   of any colour type and bit depth is accepted, transparent pixels read as if on white;
//!   baseline and progressive JPEG (greyscale or colour) is decoded straight to greyscale.
//!   Inputs are bounded before decoding, against decompression bombs: at most
//!   [`MAX_FILE_BYTES`] of file, and the header's [`MAX_DIMENSION`] pixels per side is
//!   checked before any pixel buffer is allocated.
//!
//! Errors never contain the payload, the image or the file's path.

use std::io::{Cursor, Read};
use std::path::Path;

use png::{BitDepth, ColorType, Transformations};
use qrcode::bits::Bits;
use qrcode::{Color, EcLevel, QrCode, Version};
use thiserror::Error;

/// Longest payload [`encode_png`] accepts, in bytes. Contact invites are at most 353 bytes;
/// anything much longer makes a code too dense to scan from a screen.
pub const MAX_PAYLOAD_LEN: usize = 512;
/// Light modules around the code (the QR standard's minimum).
pub const QUIET_ZONE_MODULES: usize = 4;
/// Pixels per module in [`encode_png`] output.
pub const MODULE_PX: usize = 8;
/// Largest image width or height the decoders accept, in pixels.
pub const MAX_DIMENSION: u32 = 8192;
/// Largest image file the decoders accept, in bytes (20 MB).
pub const MAX_FILE_BYTES: u64 = 20 * 1000 * 1000;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// JPEG start-of-image marker followed by the first marker's 0xFF.
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8, 0xFF];

/// Why [`encode_png`] failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum QrEncodeError {
    /// Nothing to encode.
    #[error("empty QR payload")]
    EmptyPayload,
    /// Longer than [`MAX_PAYLOAD_LEN`].
    #[error("QR payload too long")]
    PayloadTooLong,
    /// The QR or PNG encoder failed.
    #[error("QR image could not be encoded")]
    Encode,
}

/// Why a QR code could not be read from an image.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum QrDecodeError {
    /// The file could not be read.
    #[error("image file could not be read: {0}")]
    Io(std::io::ErrorKind),
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("image file too large")]
    FileTooLarge,
    /// Wider or taller than [`MAX_DIMENSION`].
    #[error("image dimensions too large")]
    ImageTooLarge,
    /// Zero width or height, or a pixel buffer whose length is not width × height.
    #[error("image dimensions do not match its pixels")]
    BadDimensions,
    /// Neither PNG nor JPEG (or, for [`decode_png`], not PNG).
    #[error("unsupported image format; use PNG or JPEG")]
    UnsupportedFormat,
    /// A PNG or JPEG that could not be decoded.
    #[error("image is damaged or not a valid PNG or JPEG")]
    InvalidImage,
    /// No QR code was found in the image.
    #[error("no QR code found")]
    NoQrCode,
    /// A QR code was found but could not be read (blurred, damaged or partly hidden).
    #[error("QR code found but could not be read")]
    Unreadable,
}

/// Builds the smallest byte-mode, medium-correction code that holds `payload`.
fn qr_code(payload: &[u8]) -> Result<QrCode, QrEncodeError> {
    if payload.is_empty() {
        return Err(QrEncodeError::EmptyPayload);
    }
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(QrEncodeError::PayloadTooLong);
    }
    for version in 1..=40 {
        let mut bits = Bits::new(Version::Normal(version));
        if bits.push_byte_data(payload).is_err() || bits.push_terminator(EcLevel::M).is_err() {
            continue;
        }
        return QrCode::with_bits(bits, EcLevel::M).map_err(|_| QrEncodeError::Encode);
    }
    Err(QrEncodeError::PayloadTooLong)
}

/// Renders `payload` as a QR code PNG: byte mode, error correction M, black modules on white,
/// a [`QUIET_ZONE_MODULES`]-module quiet zone and [`MODULE_PX`] pixels per module.
pub fn encode_png(payload: &[u8]) -> Result<Vec<u8>, QrEncodeError> {
    let code = qr_code(payload)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side_px = side_modules * MODULE_PX;
    let side = u32::try_from(side_px).map_err(|_| QrEncodeError::Encode)?;

    // 1-bit greyscale, most significant bit first; 1 is white.
    let row_bytes = side_px.div_ceil(8);
    let mut pixels = Vec::with_capacity(row_bytes * side_px);
    for y in 0..side_px {
        let my = (y / MODULE_PX).checked_sub(QUIET_ZONE_MODULES);
        let mut row = vec![0u8; row_bytes];
        for x in 0..side_px {
            let mx = (x / MODULE_PX).checked_sub(QUIET_ZONE_MODULES);
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < modules && my < modules => {
                    colors.get(my * modules + mx) == Some(&Color::Dark)
                }
                _ => false,
            };
            if !dark && let Some(byte) = row.get_mut(x / 8) {
                *byte |= 0x80 >> (x % 8);
            }
        }
        pixels.extend_from_slice(&row);
    }

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(ColorType::Grayscale);
    encoder.set_depth(BitDepth::One);
    let mut writer = encoder.write_header().map_err(|_| QrEncodeError::Encode)?;
    writer
        .write_image_data(&pixels)
        .map_err(|_| QrEncodeError::Encode)?;
    writer.finish().map_err(|_| QrEncodeError::Encode)?;
    Ok(out)
}

fn check_dimensions(width: u32, height: u32) -> Result<(), QrDecodeError> {
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(QrDecodeError::ImageTooLarge);
    }
    if width == 0 || height == 0 {
        return Err(QrDecodeError::BadDimensions);
    }
    Ok(())
}

/// Reads the first QR code found in a greyscale image: `luma` holds `width × height` bytes,
/// row by row, 0 black and 255 white (e.g. the Y plane of a camera frame).
pub fn decode_luma(width: u32, height: u32, luma: &[u8]) -> Result<Vec<u8>, QrDecodeError> {
    check_dimensions(width, height)?;
    let w = usize::try_from(width).map_err(|_| QrDecodeError::ImageTooLarge)?;
    let h = usize::try_from(height).map_err(|_| QrDecodeError::ImageTooLarge)?;
    if w.checked_mul(h) != Some(luma.len()) {
        return Err(QrDecodeError::BadDimensions);
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        luma.get(y * w + x).copied().unwrap_or(u8::MAX)
    });
    let grids = image.detect_grids();
    if grids.is_empty() {
        return Err(QrDecodeError::NoQrCode);
    }
    for grid in &grids {
        // A fresh buffer per attempt: a failed decode may have written part of its output.
        let mut payload = Vec::new();
        if grid.decode_to(&mut payload).is_ok() {
            return Ok(payload);
        }
    }
    Err(QrDecodeError::Unreadable)
}

/// Greyscale of one 8-bit pixel, composited over white when it has alpha.
fn pixel_luma(color: ColorType, px: &[u8]) -> u8 {
    let (luma, alpha) = match (color, px) {
        (ColorType::Grayscale, [l, ..]) => (*l, u8::MAX),
        (ColorType::GrayscaleAlpha, [l, a, ..]) => (*l, *a),
        (ColorType::Rgb, [r, g, b, ..]) => (rgb_luma(*r, *g, *b), u8::MAX),
        (ColorType::Rgba, [r, g, b, a, ..]) => (rgb_luma(*r, *g, *b), *a),
        _ => (u8::MAX, u8::MAX),
    };
    let (l, a) = (u32::from(luma), u32::from(alpha));
    // l·a + 255·(255 − a), divided by 255 with rounding; always ≤ 255.
    u8::try_from((l * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX)
}

/// BT.601 luma with weights summing to 256.
fn rgb_luma(r: u8, g: u8, b: u8) -> u8 {
    let y = (77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b)) >> 8;
    u8::try_from(y).unwrap_or(u8::MAX)
}

/// Decodes a PNG of any colour type and bit depth into 8-bit greyscale.
fn png_to_luma(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), QrDecodeError> {
    if !bytes.starts_with(PNG_SIGNATURE) {
        return Err(QrDecodeError::UnsupportedFormat);
    }
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Palette and low bit depths to 8 bits, tRNS to alpha, 16 bits to 8.
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let (width, height) = decoder
        .read_header_info()
        .map(|info| info.size())
        .map_err(|_| QrDecodeError::InvalidImage)?;
    check_dimensions(width, height)?;
    let mut reader = decoder
        .read_info()
        .map_err(|_| QrDecodeError::InvalidImage)?;
    let size = reader
        .output_buffer_size()
        .ok_or(QrDecodeError::ImageTooLarge)?;
    let mut frame = vec![0u8; size];
    let info = reader
        .next_frame(&mut frame)
        .map_err(|_| QrDecodeError::InvalidImage)?;
    if info.bit_depth != BitDepth::Eight {
        return Err(QrDecodeError::InvalidImage);
    }
    let channels = match info.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => return Err(QrDecodeError::InvalidImage),
    };
    let w = usize::try_from(info.width).map_err(|_| QrDecodeError::ImageTooLarge)?;
    let h = usize::try_from(info.height).map_err(|_| QrDecodeError::ImageTooLarge)?;
    let mut luma = Vec::with_capacity(w * h);
    for row in frame.chunks(info.line_size).take(h) {
        let row = row.get(..w * channels).ok_or(QrDecodeError::InvalidImage)?;
        luma.extend(
            row.chunks_exact(channels)
                .map(|px| pixel_luma(info.color_type, px)),
        );
    }
    if luma.len() != w * h {
        return Err(QrDecodeError::InvalidImage);
    }
    Ok((info.width, info.height, luma))
}

/// Decodes a JPEG into 8-bit greyscale, checking the header's dimensions before decoding.
fn jpeg_to_luma(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>), QrDecodeError> {
    use zune_jpeg::JpegDecoder;
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;

    // The decoder's own limits would fail with a generic error; ours gives ImageTooLarge.
    let options = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX))
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|_| QrDecodeError::InvalidImage)?;
    let info = decoder.info().ok_or(QrDecodeError::InvalidImage)?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_dimensions(width, height)?;
    let luma = decoder.decode().map_err(|_| QrDecodeError::InvalidImage)?;
    let pixels = usize::from(info.width) * usize::from(info.height);
    if luma.len() != pixels {
        return Err(QrDecodeError::InvalidImage);
    }
    Ok((width, height, luma))
}

/// Reads the first QR code found in a PNG or JPEG image, told apart by their magic bytes.
/// Anything else is [`QrDecodeError::UnsupportedFormat`].
pub fn decode_image(bytes: &[u8]) -> Result<Vec<u8>, QrDecodeError> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(QrDecodeError::FileTooLarge);
    }
    let (width, height, luma) = if bytes.starts_with(JPEG_SIGNATURE) {
        jpeg_to_luma(bytes)?
    } else {
        png_to_luma(bytes)?
    };
    decode_luma(width, height, &luma)
}

/// Reads the first QR code found in a PNG image (only PNG; see [`decode_image`]).
pub fn decode_png(bytes: &[u8]) -> Result<Vec<u8>, QrDecodeError> {
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(QrDecodeError::FileTooLarge);
    }
    let (width, height, luma) = png_to_luma(bytes)?;
    decode_luma(width, height, &luma)
}

/// Reads the first QR code found in a PNG or JPEG file ([`decode_image`]), refusing files
/// over [`MAX_FILE_BYTES`] before reading them.
pub fn decode_image_file(path: &Path) -> Result<Vec<u8>, QrDecodeError> {
    let file = std::fs::File::open(path).map_err(|e| QrDecodeError::Io(e.kind()))?;
    let len = file
        .metadata()
        .map_err(|e| QrDecodeError::Io(e.kind()))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(QrDecodeError::FileTooLarge);
    }
    // The file may grow after the check; never read more than one byte past the limit.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| QrDecodeError::Io(e.kind()))?;
    decode_image(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_protocol::IdentityKeyPair;
    use sotto_protocol::qr::ContactInvite;
    use sotto_protocol::safety::{ScanResult, ScannableFingerprint};

    /// Deterministic test bytes (xorshift64*).
    fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    fn encode_raw_png(
        width: u32,
        height: u32,
        color: ColorType,
        depth: BitDepth,
        data: &[u8],
        palette: Option<(&[u8], &[u8])>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        if let Some((plte, trns)) = palette {
            encoder.set_palette(plte.to_vec());
            encoder.set_trns(trns.to_vec());
        }
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn binary_payloads_round_trip() {
        for (i, len) in [1usize, 2, 17, 65, 200, 353, 360, MAX_PAYLOAD_LEN]
            .into_iter()
            .enumerate()
        {
            let payload = test_bytes(len, i as u64 + 7);
            let png = encode_png(&payload).unwrap();
            assert_eq!(decode_png(&png).unwrap(), payload, "length {len}");
        }
        // Every byte value, including invalid UTF-8 and NULs.
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_png(&encode_png(&all).unwrap()).unwrap(), all);
    }

    #[test]
    fn encoded_image_geometry() {
        let png = encode_png(b"\x01\xff").unwrap();
        let (w, h, luma) = png_to_luma(&png).unwrap();
        // Version 1: 21 modules plus two 4-module quiet zones, 8 px each.
        assert_eq!((w, h), (29 * 8, 29 * 8));
        // Quiet zone is white; the top-left finder pattern starts black.
        assert!(luma[..(w as usize) * 32].iter().all(|&l| l == 255));
        assert_eq!(luma[32 * w as usize + 32], 0);
        assert!(luma.iter().all(|&l| l == 0 || l == 255));
    }

    #[test]
    fn encode_limits() {
        assert_eq!(encode_png(&[]), Err(QrEncodeError::EmptyPayload));
        assert_eq!(
            encode_png(&[0; MAX_PAYLOAD_LEN + 1]),
            Err(QrEncodeError::PayloadTooLong)
        );
    }

    #[test]
    fn scaled_image_with_border_decodes() {
        let payload = test_bytes(120, 99);
        let (w, _, luma) = png_to_luma(&encode_png(&payload).unwrap()).unwrap();
        let w = w as usize;
        // Scale by 5/8 (nearest neighbour, 5 px per module) into a light-grey canvas, off centre.
        let scaled = w * 5 / 8;
        let (cw, ch) = (scaled + 97, scaled + 61);
        let mut canvas = vec![200u8; cw * ch];
        for y in 0..scaled {
            for x in 0..scaled {
                canvas[(y + 40) * cw + x + 31] = luma[(y * 8 / 5) * w + x * 8 / 5];
            }
        }
        assert_eq!(decode_luma(cw as u32, ch as u32, &canvas).unwrap(), payload);
        // Low contrast: dark grey modules on mid grey.
        let dim: Vec<u8> = canvas.iter().map(|&l| 40 + l / 3).collect();
        assert_eq!(decode_luma(cw as u32, ch as u32, &dim).unwrap(), payload);
    }

    #[test]
    fn png_colour_types_are_converted() {
        let payload = test_bytes(65, 3);
        let (w, h, luma) = png_to_luma(&encode_png(&payload).unwrap()).unwrap();
        let dark = |l: u8| l < 128;

        let gray8 = encode_raw_png(w, h, ColorType::Grayscale, BitDepth::Eight, &luma, None);
        let gray16: Vec<u8> = luma.iter().flat_map(|&l| [l, l]).collect();
        let gray16 = encode_raw_png(w, h, ColorType::Grayscale, BitDepth::Sixteen, &gray16, None);
        // Red on yellow: still dark on light once in greyscale.
        let rgb: Vec<u8> = luma
            .iter()
            .flat_map(|&l| if dark(l) { [120, 0, 0] } else { [255, 230, 0] })
            .collect();
        let rgb = encode_raw_png(w, h, ColorType::Rgb, BitDepth::Eight, &rgb, None);
        // Black modules on a fully transparent (black) background: read as on white.
        let rgba: Vec<u8> = luma
            .iter()
            .flat_map(|&l| {
                if dark(l) {
                    [0, 0, 0, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let rgba = encode_raw_png(w, h, ColorType::Rgba, BitDepth::Eight, &rgba, None);
        let gray_alpha: Vec<u8> = luma
            .iter()
            .flat_map(|&l| if dark(l) { [0, 255] } else { [0, 0] })
            .collect();
        let gray_alpha = encode_raw_png(
            w,
            h,
            ColorType::GrayscaleAlpha,
            BitDepth::Eight,
            &gray_alpha,
            None,
        );
        // Palette: index 0 dark blue, index 1 transparent.
        let indexed: Vec<u8> = luma.iter().map(|&l| u8::from(!dark(l))).collect();
        let indexed = encode_raw_png(
            w,
            h,
            ColorType::Indexed,
            BitDepth::Eight,
            &indexed,
            Some((&[0, 0, 90, 0, 0, 0], &[255, 0])),
        );

        for (name, png) in [
            ("gray8", gray8),
            ("gray16", gray16),
            ("rgb", rgb),
            ("rgba", rgba),
            ("gray-alpha", gray_alpha),
            ("indexed", indexed),
        ] {
            assert_eq!(decode_png(&png).unwrap(), payload, "{name}");
        }
    }

    #[test]
    fn blank_and_invalid_images() {
        let blank = encode_raw_png(
            300,
            200,
            ColorType::Grayscale,
            BitDepth::Eight,
            &[255; 60_000],
            None,
        );
        assert_eq!(decode_png(&blank), Err(QrDecodeError::NoQrCode));
        assert_eq!(
            decode_luma(300, 200, &[255; 60_000]),
            Err(QrDecodeError::NoQrCode)
        );
        assert_eq!(
            decode_png(b"GIF89a..."),
            Err(QrDecodeError::UnsupportedFormat)
        );
        assert_eq!(decode_png(b""), Err(QrDecodeError::UnsupportedFormat));
        let png = encode_png(b"x").unwrap();
        assert_eq!(
            decode_png(&png[..png.len() / 2]),
            Err(QrDecodeError::InvalidImage)
        );
        assert_eq!(
            decode_luma(10, 10, &[0; 99]),
            Err(QrDecodeError::BadDimensions)
        );
        assert_eq!(decode_luma(0, 10, &[]), Err(QrDecodeError::BadDimensions));
    }

    #[test]
    fn damaged_code_is_unreadable_not_missing() {
        let payload = test_bytes(200, 5);
        let (w, h, mut luma) = png_to_luma(&encode_png(&payload).unwrap()).unwrap();
        let wu = w as usize;
        // Scribble random modules over a band across the middle (about 40% of the code),
        // well past what error correction M can repair, leaving the finder patterns intact.
        let noise = test_bytes(wu * wu, 6);
        for y in wu * 3 / 10..wu * 7 / 10 {
            for x in 0..wu {
                let module = (y / 8) * wu + x / 8;
                luma[y * wu + x] = if noise[module] & 1 == 0 { 0 } else { 255 };
            }
        }
        assert_eq!(decode_luma(w, h, &luma), Err(QrDecodeError::Unreadable));
    }

    #[test]
    fn oversized_inputs_are_refused() {
        // 8193 × 1, 1-bit: a tiny file whose dimensions are over the limit.
        let wide = encode_raw_png(
            MAX_DIMENSION + 1,
            1,
            ColorType::Grayscale,
            BitDepth::One,
            &vec![0xff; (MAX_DIMENSION as usize + 1).div_ceil(8)],
            None,
        );
        assert_eq!(decode_png(&wide), Err(QrDecodeError::ImageTooLarge));
        assert_eq!(
            decode_luma(1, MAX_DIMENSION + 1, &[]),
            Err(QrDecodeError::ImageTooLarge)
        );
        let huge = vec![0u8; MAX_FILE_BYTES as usize + 1];
        assert_eq!(decode_png(&huge), Err(QrDecodeError::FileTooLarge));
    }

    #[test]
    fn image_file_round_trip_and_errors() {
        let dir = std::env::temp_dir().join(format!("sotto-qr-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("code.png");
        let payload = test_bytes(90, 11);
        std::fs::write(&path, encode_png(&payload).unwrap()).unwrap();
        assert_eq!(decode_image_file(&path).unwrap(), payload);

        let big = dir.join("big.png");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(decode_image_file(&big), Err(QrDecodeError::FileTooLarge));
        assert_eq!(
            decode_image_file(&dir.join("missing.png")),
            Err(QrDecodeError::Io(std::io::ErrorKind::NotFound))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `luma` (as from [`png_to_luma`]) as a JPEG: greyscale, or colour with the dark
    /// modules dark blue on a beige background.
    fn to_jpeg(w: u32, h: u32, luma: &[u8], quality: u8, colour: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut out, quality);
        if colour {
            let rgb: Vec<u8> = luma
                .iter()
                .flat_map(|&l| {
                    if l < 128 {
                        [20, 30, 90]
                    } else {
                        [240, 225, 190]
                    }
                })
                .collect();
            encoder
                .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
                .unwrap();
        } else {
            encoder
                .encode(luma, w as u16, h as u16, jpeg_encoder::ColorType::Luma)
                .unwrap();
        }
        out
    }

    #[test]
    fn jpeg_images_decode_like_png() {
        let payload = test_bytes(150, 21);
        let (w, h, luma) = png_to_luma(&encode_png(&payload).unwrap()).unwrap();
        for (quality, colour) in [(90, false), (50, false), (85, true), (40, true)] {
            let jpeg = to_jpeg(w, h, &luma, quality, colour);
            assert!(jpeg.starts_with(JPEG_SIGNATURE));
            assert_eq!(
                decode_image(&jpeg).unwrap(),
                payload,
                "quality {quality} colour {colour}"
            );
            // decode_png stays PNG-only.
            assert_eq!(decode_png(&jpeg), Err(QrDecodeError::UnsupportedFormat));
        }
        assert_eq!(
            decode_image(&encode_png(&payload).unwrap()).unwrap(),
            payload
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.jpg");
        std::fs::write(&path, to_jpeg(w, h, &luma, 80, true)).unwrap();
        assert_eq!(decode_image_file(&path).unwrap(), payload);
    }

    /// A photo-like frame: the code small in a larger picture, uneven lighting, sensor
    /// noise, colour, strong JPEG compression.
    #[test]
    fn noisy_photo_like_jpeg_decodes() {
        let payload = test_bytes(120, 31);
        let (w, h, luma) = png_to_luma(&encode_png(&payload).unwrap()).unwrap();
        let (pw, ph) = (w as usize + 300, h as usize + 200);
        let noise = test_bytes(pw * ph, 32);
        let mut photo = vec![0u8; pw * ph];
        for y in 0..ph {
            for x in 0..pw {
                let (cx, cy) = (x.wrapping_sub(170), y.wrapping_sub(90));
                let base = if cx < w as usize && cy < h as usize {
                    luma[cy * w as usize + cx]
                } else {
                    200
                };
                // Dark modules stay dark, light ones dim towards one corner; ±24 noise.
                let shade = 255 - (x + y) * 90 / (pw + ph);
                let v =
                    i32::from(base) * shade as i32 / 255 + i32::from(noise[y * pw + x] % 49) - 24;
                photo[y * pw + x] = v.clamp(0, 255) as u8;
            }
        }
        let jpeg = to_jpeg(pw as u32, ph as u32, &photo, 35, true);
        assert_eq!(decode_image(&jpeg).unwrap(), payload);
    }

    #[test]
    fn bad_and_oversized_jpegs_are_refused() {
        assert_eq!(decode_image(b""), Err(QrDecodeError::UnsupportedFormat));
        assert_eq!(
            decode_image(b"GIF89a\x01\x00\x01\x00"),
            Err(QrDecodeError::UnsupportedFormat)
        );
        assert_eq!(
            decode_image(b"RIFF\0\0\0\0WEBPVP8 "),
            Err(QrDecodeError::UnsupportedFormat)
        );
        let (w, h, luma) = png_to_luma(&encode_png(b"jpeg").unwrap()).unwrap();
        let jpeg = to_jpeg(w, h, &luma, 80, false);
        assert_eq!(decode_image(&jpeg[..20]), Err(QrDecodeError::InvalidImage));
        assert_eq!(
            decode_image(&[0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34]),
            Err(QrDecodeError::InvalidImage)
        );
        // A tiny file whose header claims more than MAX_DIMENSION pixels across: refused
        // from the header, before the frame is decoded.
        let wide = to_jpeg(
            MAX_DIMENSION + 1,
            1,
            &vec![255; MAX_DIMENSION as usize + 1],
            50,
            false,
        );
        assert!(wide.len() < 10_000);
        assert_eq!(decode_image(&wide), Err(QrDecodeError::ImageTooLarge));
        let mut huge = jpeg.clone();
        huge.resize(MAX_FILE_BYTES as usize + 1, 0);
        assert_eq!(decode_image(&huge), Err(QrDecodeError::FileTooLarge));
        // Blank JPEG: decodes, no code in it.
        let blank = to_jpeg(64, 64, &[255; 64 * 64], 80, false);
        assert_eq!(decode_image(&blank), Err(QrDecodeError::NoQrCode));
    }

    #[test]
    fn scannable_fingerprint_round_trips() {
        let ours = ScannableFingerprint::new(b"alice", &[1; 33], b"bob", &[2; 33]);
        let theirs = ScannableFingerprint::new(b"bob", &[2; 33], b"alice", &[1; 33]);
        let payload = ours.encode();
        assert_eq!(payload.len(), 65);
        let scanned = decode_png(&encode_png(&payload).unwrap()).unwrap();
        assert_eq!(scanned, payload);
        assert_eq!(theirs.compare(&scanned), ScanResult::Match);
    }

    #[test]
    fn contact_invite_round_trips() {
        let identity = IdentityKeyPair::generate(&mut rand_core::OsRng).public();
        let long_relay = format!("{}.example:443", "r".repeat(240));
        for (relay, username) in [
            ("relay.example.org:443", "zoë"),
            (long_relay.as_str(), "x".repeat(64).as_str()),
        ] {
            let invite = ContactInvite::new(relay, username, identity).unwrap();
            let bytes = invite.encode();
            let scanned = decode_png(&encode_png(&bytes).unwrap()).unwrap();
            assert_eq!(ContactInvite::decode(&scanned), Ok(invite));
        }
    }
}
