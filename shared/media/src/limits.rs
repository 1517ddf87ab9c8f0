//! The bounds within which an upload is processed.

const MIB: u64 = 1024 * 1024;

/// How much work one upload may cost. Each bound is checked before the work it bounds (an
/// image's dimensions before its pixels are allocated, a document's inflated bytes as they are
/// inflated), so a small file cannot make the Lambda allocate gigabytes or spin for minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The widest and tallest image decoded, in pixels.
    pub max_image_side: u32,
    /// The most memory the image decoder may allocate, in bytes.
    pub max_image_alloc: u64,
    /// The most bytes a document may inflate to: DOCX's `word/document.xml`, or the content
    /// streams of a PDF's pages together. Past it the document is refused as a likely bomb.
    pub max_document_bytes: u64,
    /// The most characters of text kept; past it the text is cut and marked truncated.
    pub max_text_chars: usize,
    /// The most PDF pages whose text is extracted; the page count is still reported.
    pub max_pdf_pages: usize,
    /// The most entries a DOCX (a zip) may list: its central directory is read whole.
    pub max_archive_entries: usize,
}

impl Default for Limits {
    /// Bounds for a Lambda with a GiB or two of memory: 10,000 px a side, 512 MiB for the image
    /// decoder, 64 MiB inflated per document, 2,000,000 characters and 2,000 PDF pages.
    fn default() -> Self {
        Limits {
            max_image_side: 10_000,
            max_image_alloc: 512 * MIB,
            max_document_bytes: 64 * MIB,
            max_text_chars: 2_000_000,
            max_pdf_pages: 2_000,
            max_archive_entries: 10_000,
        }
    }
}

/// `bytes` for a reason shown to people: "64 MiB" when a whole number of MiB, else "1000 bytes".
pub(crate) fn size(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) { format!("{} MiB", bytes / MIB) } else { format!("{bytes} bytes") }
}
