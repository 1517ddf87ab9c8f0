//! The type of an upload told from its bytes, and whether the declared Content-Type agrees.

use std::io::Cursor;
use std::panic::catch_unwind;

/// The MIME type of bytes that are nothing recognised.
const OCTET_STREAM: &str = "application/octet-stream";
const ZIP: &str = "application/zip";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
/// The entry whose presence makes a zip a Word document (and whose text is extracted).
pub(crate) const DOCX_BODY: &str = "word/document.xml";

/// What the bytes of an upload are, whatever its name or declared type says. The first seven
/// are the kinds that are processed; everything else is `Other` with the MIME type its magic
/// number tells (a Windows executable is `application/vnd.microsoft.portable-executable`), or
/// `application/octet-stream` when nothing is recognised, so that the caller's allowed-type
/// policy, not this crate, decides what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniffed {
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
    /// A GIF image (the first frame is what is processed).
    Gif,
    /// A WebP image, lossy or lossless.
    Webp,
    /// A PDF document.
    Pdf,
    /// A Word document: a zip whose central directory lists `word/document.xml`.
    Docx,
    /// UTF-8 text without NUL bytes and with few control characters: plain text, Markdown and
    /// CSV alike, since the bytes cannot tell them apart.
    Text,
    /// Anything else, with its MIME type.
    Other(&'static str),
}

impl Sniffed {
    /// The canonical MIME type of the kind: the one to store the object under. Text is
    /// `text/plain` (its bytes were checked to be UTF-8).
    pub fn mime(self) -> &'static str {
        match self {
            Sniffed::Png => "image/png",
            Sniffed::Jpeg => "image/jpeg",
            Sniffed::Gif => "image/gif",
            Sniffed::Webp => "image/webp",
            Sniffed::Pdf => "application/pdf",
            Sniffed::Docx => DOCX,
            Sniffed::Text => "text/plain",
            Sniffed::Other(mime) => mime,
        }
    }

    /// Whether the kind is one of the four image formats, which get dimensions and a thumbnail.
    pub fn is_image(self) -> bool {
        matches!(self, Sniffed::Png | Sniffed::Jpeg | Sniffed::Gif | Sniffed::Webp)
    }
}

/// The type of `bytes`, from their magic number (or, for text, their encoding): never from a
/// file name, which the client chooses. A zip is a DOCX only if its central directory lists
/// `word/document.xml`. Never panics.
pub fn sniff(bytes: &[u8]) -> Sniffed {
    match infer::get(bytes) {
        Some(found) => from_magic(found.mime_type(), bytes),
        None if is_text(bytes) => Sniffed::Text,
        None => Sniffed::Other(OCTET_STREAM),
    }
}

/// The kind for the MIME type `infer` found, checking a zip's entries before calling it a DOCX.
fn from_magic(mime: &'static str, bytes: &[u8]) -> Sniffed {
    match mime {
        "image/png" => Sniffed::Png,
        "image/jpeg" => Sniffed::Jpeg,
        "image/gif" => Sniffed::Gif,
        "image/webp" => Sniffed::Webp,
        "application/pdf" => Sniffed::Pdf,
        DOCX | ZIP if lists_docx_body(bytes) => Sniffed::Docx,
        DOCX => Sniffed::Other(ZIP),
        other => Sniffed::Other(other),
    }
}

/// Whether `bytes` are a zip whose central directory lists the Word document body. The zip
/// reader runs on untrusted bytes, so a panic in it means "no".
fn lists_docx_body(bytes: &[u8]) -> bool {
    catch_unwind(|| zip::ZipArchive::new(Cursor::new(bytes)).is_ok_and(|archive| archive.index_for_name(DOCX_BODY).is_some())).unwrap_or(false)
}

/// Whether `bytes` read as text: valid UTF-8, no NUL, and at most one control character in a
/// hundred (tabs, line breaks and form feeds aside). Binary formats fail one of the three.
fn is_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    let (chars, controls) = text.chars().fold((0usize, 0usize), |(chars, controls), c| (chars + 1, controls + usize::from(is_binary_control(c))));
    !text.contains('\0') && controls.saturating_mul(100) <= chars
}

/// A control character that text files do not normally contain.
fn is_binary_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')
}

/// Whether the Content-Type the client declared agrees with the bytes: its media type (any
/// parameters such as `; charset=utf-8` ignored, case-insensitively) is the kind's MIME type,
/// or for text one of `text/plain`, `text/markdown` and `text/csv`. An executable renamed to
/// `.png` and declared `image/png` does not match. An `Other` kind matches only its own MIME
/// type, so declaring unknown bytes as `application/octet-stream` is honest.
pub fn matches_declared(sniffed: Sniffed, declared_content_type: &str) -> bool {
    let essence = declared_content_type.split_once(';').map_or(declared_content_type, |(essence, _)| essence).trim().to_ascii_lowercase();
    match sniffed {
        Sniffed::Text => matches!(essence.as_str(), "text/plain" | "text/markdown" | "text/csv"),
        kind => essence == kind.mime(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_utf8_without_nul_or_many_controls() {
        assert_eq!(sniff(b""), Sniffed::Text);
        assert_eq!(sniff("# Title\n\n| a | b |\n".as_bytes()), Sniffed::Text);
        assert_eq!(sniff("name,city\nZoë,Köln\r\n".as_bytes()), Sniffed::Text);
        assert_eq!(sniff(b"a\0b"), Sniffed::Other(OCTET_STREAM));
        assert_eq!(sniff(b"\xff\xfe\x00h"), Sniffed::Other(OCTET_STREAM));
        assert_eq!(sniff(b"ab\x01\x02\x03"), Sniffed::Other(OCTET_STREAM));
        assert_eq!(sniff(format!("{}\x1b[0m", "x".repeat(200)).as_bytes()), Sniffed::Text);
    }

    #[test]
    fn declared_types_compare_by_essence() {
        assert!(matches_declared(Sniffed::Png, "image/png"));
        assert!(matches_declared(Sniffed::Png, " IMAGE/PNG ; foo=bar"));
        assert!(matches_declared(Sniffed::Text, "text/markdown; charset=utf-8"));
        assert!(matches_declared(Sniffed::Text, "Text/CSV"));
        assert!(!matches_declared(Sniffed::Text, "text/html"));
        assert!(!matches_declared(Sniffed::Jpeg, "image/png"));
        assert!(!matches_declared(Sniffed::Other("application/vnd.microsoft.portable-executable"), "image/png"));
        assert!(matches_declared(Sniffed::Other(OCTET_STREAM), "application/octet-stream"));
        assert!(!matches_declared(Sniffed::Pdf, ""));
    }
}
