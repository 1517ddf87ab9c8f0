//! What is derived from an upload, and why it could not be.

use std::any::Any;
use std::fmt;
use std::panic::catch_unwind;

use crate::{Limits, Sniffed, docx, pdf, picture, text};

/// The longer side of a thumbnail, in pixels, at most: big enough for a list or a card.
pub const THUMBNAIL_MAX_SIDE: u32 = 256;
/// Thumbnails are JPEG whatever the original: small, and shown by every browser.
pub const THUMBNAIL_CONTENT_TYPE: &str = "image/jpeg";

/// What was derived from an upload, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// An image: its dimensions and a thumbnail.
    Image(Picture),
    /// A PDF, a DOCX or a text file: its text.
    Document(Extract),
    /// A kind with nothing to derive. Not an error: whether it is allowed is the caller's policy.
    Other(Sniffed),
}

impl Processed {
    /// The kind that was processed.
    pub fn kind(&self) -> Sniffed {
        match self {
            Processed::Image(picture) => picture.kind,
            Processed::Document(extract) => extract.kind,
            Processed::Other(kind) => *kind,
        }
    }
}

/// An image's dimensions and thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Png, Jpeg, Gif or Webp.
    pub kind: Sniffed,
    /// The width of the original, in pixels.
    pub width: u32,
    /// The height of the original, in pixels.
    pub height: u32,
    /// A small copy to show in lists.
    pub thumbnail: Thumbnail,
}

/// A thumbnail: the image scaled down (never up) to at most [`THUMBNAIL_MAX_SIDE`] on its
/// longer side, aspect ratio kept, transparency flattened onto white.
#[derive(Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The encoded thumbnail.
    pub bytes: Vec<u8>,
    /// The MIME type of `bytes`: [`THUMBNAIL_CONTENT_TYPE`].
    pub content_type: &'static str,
    /// The width of the thumbnail, in pixels.
    pub width: u32,
    /// The height of the thumbnail, in pixels.
    pub height: u32,
}

impl fmt::Debug for Thumbnail {
    /// The size of the bytes rather than the bytes: they make no sense printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thumbnail")
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .field("content_type", &self.content_type)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The text of a document, for search and previews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extract {
    /// Pdf, Docx or Text.
    pub kind: Sniffed,
    /// The text: paragraphs (DOCX) and pages (PDF) on lines of their own.
    pub text: String,
    /// The page count of a PDF, all pages counted even past the page limit; `None` for a DOCX
    /// (its pages only exist once laid out) and for text.
    pub pages: Option<u32>,
    /// The characters in `text`.
    pub characters: usize,
    /// Whether `text` is not the whole text: the character limit was reached, or pages past
    /// the page limit were not read.
    pub truncated: bool,
}

/// Why an upload could not be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Over a [`Limits`] bound: too many pixels, or a document that inflates too far.
    TooLarge,
    /// Not a valid file of its kind: truncated, corrupt, or not what its kind says.
    Unreadable,
    /// A parser panicked: a bug to report, caught so that the Lambda goes on.
    Panicked,
}

/// Why an upload could not be processed, with a short reason to show a person ("image is
/// 20000×20000 pixels, above the 10000×10000 limit").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The class of failure: a limit, bad bytes, or a bug.
    pub kind: FailureKind,
    /// One short sentence, without a final period.
    pub reason: String,
}

/// The longest reason kept: a parser's message can embed a lot of the input.
const MAX_REASON_CHARS: usize = 300;

impl Failure {
    /// Over a limit, for `reason`.
    pub(crate) fn too_large(reason: impl Into<String>) -> Self {
        Failure::new(FailureKind::TooLarge, reason.into())
    }

    /// Bad bytes, for `reason`.
    pub(crate) fn unreadable(reason: impl Into<String>) -> Self {
        Failure::new(FailureKind::Unreadable, reason.into())
    }

    /// A caught panic, with its message when it has one.
    fn panicked(payload: &(dyn Any + Send)) -> Self {
        let message = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let reason = message.map_or_else(|| "processing panicked".to_owned(), |message| format!("processing panicked: {message}"));
        Failure::new(FailureKind::Panicked, reason)
    }

    fn new(kind: FailureKind, mut reason: String) -> Self {
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        Failure { kind, reason }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Failure {}

/// Derives what can be derived from `bytes` of `kind` (from [`crate::sniff`]) within `limits`:
/// an image's dimensions and thumbnail, a document's text, nothing for other kinds. Never
/// panics out: a panic in a parser is caught and becomes a [`FailureKind::Panicked`] failure
/// (the release profile unwinds). An abort (stack overflow, allocation failure) cannot be
/// caught, which is why the limits are checked before allocating.
pub fn process(bytes: &[u8], kind: Sniffed, limits: &Limits) -> Result<Processed, Failure> {
    catch_unwind(|| dispatch(bytes, kind, limits)).unwrap_or_else(|payload| Err(Failure::panicked(payload.as_ref())))
}

/// The processing of one kind.
fn dispatch(bytes: &[u8], kind: Sniffed, limits: &Limits) -> Result<Processed, Failure> {
    match kind {
        Sniffed::Png | Sniffed::Jpeg | Sniffed::Gif | Sniffed::Webp => picture::summarize(bytes, kind, limits).map(Processed::Image),
        Sniffed::Pdf => pdf::extract(bytes, limits).map(Processed::Document),
        Sniffed::Docx => docx::extract(bytes, limits).map(Processed::Document),
        Sniffed::Text => text::extract(bytes, limits).map(Processed::Document),
        Sniffed::Other(_) => Ok(Processed::Other(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_failure_with_its_message() {
        let failure = catch_unwind(|| panic!("index out of bounds")).map_err(|payload| Failure::panicked(payload.as_ref())).unwrap_err();
        assert_eq!(failure, Failure { kind: FailureKind::Panicked, reason: "processing panicked: index out of bounds".into() });
    }

    #[test]
    fn long_reasons_are_cut() {
        let failure = Failure::unreadable("x".repeat(1000));
        assert_eq!(failure.reason.chars().count(), MAX_REASON_CHARS + 1);
    }
}
