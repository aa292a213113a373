//! From uploaded bytes to the two stored variants. The upload is fully decoded (with the pixel
//! count checked from the header first, so a decompression bomb is refused before any
//! allocation), turned upright, and re-encoded: the stored bytes are ours, with no EXIF, GPS or
//! other metadata, and a thumbnail whose longest side is `thumb_side`.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::error::{ImageError, LimitErrorKind};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::Format;

/// `?variant=`: the stored renditions of one image version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = ImageVariant, rename_all = "snake_case")]
pub enum Variant {
    Original,
    Thumb,
}

impl Variant {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "original" => Ok(Self::Original),
            "thumb" => Ok(Self::Thumb),
            _ => Err("must be original or thumb".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Thumb => "thumb",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_pixels: u64,
    pub thumb_side: u32,
    pub jpeg_quality: u8,
}

/// One encoded rendition.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Strong ETag value (quoted), from the bytes' SHA-256.
    pub etag: String,
}

#[derive(Debug, Clone)]
pub struct Processed {
    pub format: Format,
    pub original: Encoded,
    pub thumb: Encoded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("only JPEG, PNG, WebP and GIF images are accepted")]
    UnsupportedType,
    #[error("the image declares {width}×{height} pixels; at most {max} pixels are accepted")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
}

/// Sniffs, decodes within `limits`, and re-encodes `bytes` into the original and thumbnail
/// variants. CPU-bound: call it on a blocking thread.
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, Rejected> {
    let format = Format::sniff(bytes).ok_or(Rejected::UnsupportedType)?;
    let img = decode(bytes, format, limits)?;
    let original = encode(&img, format, limits)?;
    let side = limits.thumb_side;
    let thumb_img = if img.width() > side || img.height() > side {
        img.thumbnail(side, side)
    } else {
        img
    };
    let thumb = encode(&thumb_img, format, limits)?;
    Ok(Processed {
        format,
        original,
        thumb,
    })
}

fn undecodable(e: &ImageError) -> Rejected {
    Rejected::Undecodable(e.to_string())
}

fn decode(bytes: &[u8], format: Format, limits: &Limits) -> Result<DynamicImage, Rejected> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
    // The decoders refuse dimensions and allocations beyond these themselves, too.
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut guard = image::Limits::default();
    guard.max_image_width = Some(side);
    guard.max_image_height = Some(side);
    guard.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(64 * 1024 * 1024));
    reader.limits(guard);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        ImageError::Limits(l) if matches!(l.kind(), LimitErrorKind::DimensionError) => {
            Rejected::TooManyPixels {
                width: 0,
                height: 0,
                max: limits.max_pixels,
            }
        }
        other => undecodable(&other),
    })?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(Rejected::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        ImageError::Limits(_) => Rejected::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        },
        other => undecodable(&other),
    })?;
    // EXIF orientation is metadata too: apply it, since the re-encoded file has none.
    img.apply_orientation(orientation);
    Ok(img)
}

fn encode(img: &DynamicImage, format: Format, limits: &Limits) -> Result<Encoded, Rejected> {
    let mut out = Cursor::new(Vec::new());
    let written = match format {
        Format::Jpeg => img
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, limits.jpeg_quality)),
        Format::Png | Format::Gif | Format::WebP if img.color().has_alpha() => {
            DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, format.image_format())
        }
        Format::Png | Format::WebP => {
            DynamicImage::ImageRgb8(img.to_rgb8()).write_to(&mut out, format.image_format())
        }
        Format::Gif => {
            DynamicImage::ImageRgba8(img.to_rgba8()).write_to(&mut out, format.image_format())
        }
    };
    written.map_err(|e| Rejected::Undecodable(format!("re-encoding failed: {e}")))?;
    let bytes = out.into_inner();
    Ok(Encoded {
        etag: etag_of(&bytes),
        width: img.width(),
        height: img.height(),
        bytes,
    })
}

/// A strong ETag: the quoted hex of the first 16 bytes of the SHA-256.
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", kommerce_kit::digest::sha256_hex(bytes, 16))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    const LIMITS: Limits = Limits {
        max_pixels: 4_000_000,
        thumb_side: 320,
        jpeg_quality: 85,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([
                u8::try_from(x % 256).unwrap(),
                u8::try_from(y % 256).unwrap(),
                9,
            ])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_image_gets_a_thumbnail_whose_longest_side_is_the_limit() {
        let p = process(&png(800, 400), &LIMITS).unwrap();
        assert_eq!(p.format, Format::Png);
        assert_eq!((p.original.width, p.original.height), (800, 400));
        assert_eq!((p.thumb.width, p.thumb.height), (320, 160));
        assert_ne!(p.original.etag, p.thumb.etag);
        assert!(p.original.etag.starts_with('"') && p.original.etag.len() == 34);
    }

    #[test]
    fn a_small_image_keeps_its_size_as_thumbnail() {
        let p = process(&png(40, 90), &LIMITS).unwrap();
        assert_eq!((p.thumb.width, p.thumb.height), (40, 90));
    }

    #[test]
    fn too_many_pixels_and_garbage_are_rejected() {
        let r = process(&png(2100, 2000), &LIMITS).unwrap_err();
        assert_eq!(
            r,
            Rejected::TooManyPixels {
                width: 2100,
                height: 2000,
                max: 4_000_000
            }
        );
        assert_eq!(
            process(b"plain text", &LIMITS).unwrap_err(),
            Rejected::UnsupportedType
        );
        let mut truncated = png(50, 50);
        truncated.truncate(40);
        assert!(matches!(
            process(&truncated, &LIMITS),
            Err(Rejected::Undecodable(_))
        ));
    }

    #[test]
    fn variants_parse() {
        assert_eq!(Variant::parse("thumb"), Ok(Variant::Thumb));
        assert_eq!(Variant::parse("original"), Ok(Variant::Original));
        assert!(Variant::parse("huge").is_err());
    }
}
