//! Images: dimensions read from the header and checked before any pixel is decoded, then a
//! JPEG thumbnail.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ExtendedColorType, ImageError, ImageReader, RgbImage};

use crate::limits::size;
use crate::process::{Failure, Picture, THUMBNAIL_CONTENT_TYPE, THUMBNAIL_MAX_SIDE, Thumbnail};
use crate::{Limits, Sniffed};

/// The JPEG quality of thumbnails: small files, no visible blocks at 256 px.
const THUMBNAIL_QUALITY: u8 = 80;

/// The dimensions and thumbnail of an image of `kind`.
pub(crate) fn summarize(bytes: &[u8], kind: Sniffed, limits: &Limits) -> Result<Picture, Failure> {
    let (width, height) = dimensions(bytes, limits)?;
    check_sides(width, height, limits)?;
    let image = decode(bytes, limits)?;
    let thumbnail = thumbnail(&image)?;
    Ok(Picture { kind, width, height, thumbnail })
}

/// The width and height the header states, read without decoding pixels. Only the allocation
/// limit applies here, so that an oversized image is reported with its dimensions.
fn dimensions(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), Failure> {
    let mut bounds = image::Limits::default();
    bounds.max_alloc = Some(limits.max_image_alloc);
    reader(bytes, bounds)?.into_dimensions().map_err(|e| image_failure(&e, limits))
}

/// Refuses an image wider or taller than the limit, from its header alone.
fn check_sides(width: u32, height: u32, limits: &Limits) -> Result<(), Failure> {
    let max = limits.max_image_side;
    if width > max || height > max {
        return Err(Failure::too_large(format!("image is {width}×{height} pixels, above the {max}×{max} limit")));
    }
    Ok(())
}

/// The decoded image, with the decoder held to the side and allocation limits.
fn decode(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, Failure> {
    reader(bytes, decoder_limits(limits))?.decode().map_err(|e| image_failure(&e, limits))
}

/// The `image` crate's limits for `limits`: set before decoding, so that the decoder refuses
/// rather than allocates.
fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_image_side);
    bounds.max_image_height = Some(limits.max_image_side);
    bounds.max_alloc = Some(limits.max_image_alloc);
    bounds
}

/// A reader of `bytes` whose format is told from their magic number, held to `bounds`.
fn reader(bytes: &[u8], bounds: image::Limits) -> Result<ImageReader<Cursor<&[u8]>>, Failure> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| Failure::unreadable(format!("image could not be read: {e}")))?;
    reader.limits(bounds);
    Ok(reader)
}

/// A decoder error as a failure: a limit hit is "too large", anything else "unreadable".
fn image_failure(error: &ImageError, limits: &Limits) -> Failure {
    match error {
        ImageError::Limits(_) => Failure::too_large(format!("image needs more memory than the {} limit", size(limits.max_image_alloc))),
        ImageError::Unsupported(e) => Failure::unreadable(format!("image format is not supported: {e}")),
        e => Failure::unreadable(format!("image could not be decoded: {e}")),
    }
}

/// The JPEG thumbnail of `image`: scaled down to fit the thumbnail square, never up.
fn thumbnail(image: &DynamicImage) -> Result<Thumbnail, Failure> {
    let (width, height) = thumbnail_size(image.width(), image.height());
    let rgb = if (width, height) == (image.width(), image.height()) { on_white(image) } else { on_white(&image.thumbnail_exact(width, height)) };
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, THUMBNAIL_QUALITY)
        .encode(rgb.as_raw(), width, height, ExtendedColorType::Rgb8)
        .map_err(|e| Failure::unreadable(format!("thumbnail could not be encoded: {e}")))?;
    Ok(Thumbnail { bytes, content_type: THUMBNAIL_CONTENT_TYPE, width, height })
}

/// The size of the thumbnail of a `width`×`height` image: the longer side at most
/// [`THUMBNAIL_MAX_SIDE`], the aspect ratio kept (rounded, at least one pixel).
pub(crate) fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= THUMBNAIL_MAX_SIDE {
        return (width, height);
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(THUMBNAIL_MAX_SIDE) + u64::from(longer) / 2) / u64::from(longer);
        u32::try_from(scaled).unwrap_or(THUMBNAIL_MAX_SIDE).max(1)
    };
    (scale(width), scale(height))
}

/// The image as RGB, transparent pixels blended onto white (JPEG has no alpha, and a
/// transparent logo dropped onto black is unreadable).
fn on_white(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        image::Rgb([blend(r, a), blend(g, a), blend(b, a)])
    })
}

/// One channel at opacity `alpha` over white.
fn blend(channel: u8, alpha: u8) -> u8 {
    let mixed = (u16::from(channel) * u16::from(alpha) + 255 * (255 - u16::from(alpha)) + 127) / 255;
    u8::try_from(mixed).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_fit_the_square_and_keep_the_aspect_ratio() {
        assert_eq!(thumbnail_size(2000, 1500), (256, 192));
        assert_eq!(thumbnail_size(1500, 2000), (192, 256));
        assert_eq!(thumbnail_size(10_000, 1), (256, 1));
        assert_eq!(thumbnail_size(100, 40), (100, 40));
        assert_eq!(thumbnail_size(256, 256), (256, 256));
        assert_eq!(thumbnail_size(257, 3), (256, 3));
    }

    #[test]
    fn transparency_blends_onto_white() {
        assert_eq!(blend(0, 0), 255);
        assert_eq!(blend(0, 255), 0);
        assert_eq!(blend(200, 255), 200);
        assert_eq!(blend(0, 128), 127);
    }
}
