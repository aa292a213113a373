//! The accepted formats, recognised by their leading bytes only: never by a client's
//! `Content-Type` header or file name.

/// One of the four formats the service stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
}

impl Format {
    /// The format the bytes are, judged by their magic numbers; `None` for anything else.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    pub fn from_content_type(ct: &str) -> Option<Self> {
        [Self::Jpeg, Self::Png, Self::WebP, Self::Gif]
            .into_iter()
            .find(|f| f.content_type() == ct)
    }

    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::WebP => image::ImageFormat::WebP,
            Self::Gif => image::ImageFormat::Gif,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn sniffs_by_magic_numbers_only() {
        let cases: &[(&[u8], Option<Format>)] = &[
            (b"\xFF\xD8\xFF\xE0rest", Some(Format::Jpeg)),
            (b"\x89PNG\r\n\x1a\n....", Some(Format::Png)),
            (b"GIF89a....", Some(Format::Gif)),
            (b"GIF87a....", Some(Format::Gif)),
            (b"RIFF\0\0\0\0WEBPVP8 ", Some(Format::WebP)),
            (b"RIFF\0\0\0\0WAVEfmt ", None),
            (b"hello, I am a .png", None),
            (b"<svg xmlns=", None),
            (b"", None),
            (b"\x89PNG", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(Format::sniff(bytes), *want, "{bytes:?}");
        }
    }

    #[test]
    fn content_types_round_trip() {
        for f in [Format::Jpeg, Format::Png, Format::WebP, Format::Gif] {
            assert_eq!(Format::from_content_type(f.content_type()), Some(f));
        }
        assert_eq!(Format::from_content_type("text/plain"), None);
    }
}
