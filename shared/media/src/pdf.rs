//! PDFs: the page count and the text of the first pages, with every stream inflated under a
//! byte budget.

use lopdf::{DecompressError, Document, Error, LoadOptions, ObjectId};

use crate::limits::size;
use crate::process::{Extract, Failure};
use crate::text::TextBuf;
use crate::{Limits, Sniffed};

/// What separates the pages of a PDF's extracted text.
pub const PAGE_BREAK: char = '\u{c}';

/// The page count and text of a PDF, each page's text ending its line, pages after the
/// first beginning with [`PAGE_BREAK`]. Pages past the page
/// limit are counted but not read, and text that cannot be decoded (an unknown font encoding,
/// say) is skipped rather than failing the document.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extract, Failure> {
    let max_bytes = usize::try_from(limits.max_document_bytes).unwrap_or(usize::MAX);
    let document = load(bytes, max_bytes, limits)?;
    let pages = document.get_pages();
    let mut buf = TextBuf::new(limits.max_text_chars);
    let mut budget = max_bytes;
    for (i, (&number, &page_id)) in pages.iter().take(limits.max_pdf_pages).enumerate() {
        budget = charge_page(&document, page_id, budget, limits)?;
        // Pages after the first begin with a form feed, as pdftotext separates them: what
        // reads the text (chat's citations) can tell the page of any offset.
        if i > 0 {
            buf.push(PAGE_BREAK);
        }
        push_page_text(&document, number, max_bytes, &mut buf, limits)?;
        if buf.is_truncated() {
            break;
        }
    }
    if pages.len() > limits.max_pdf_pages {
        buf.mark_truncated();
    }
    Ok(buf.into_extract(Sniffed::Pdf, Some(u32::try_from(pages.len()).unwrap_or(u32::MAX))))
}

/// The parsed document, each stream inflated at load (object and cross-reference streams) held
/// to `max_bytes`.
fn load(bytes: &[u8], max_bytes: usize, limits: &Limits) -> Result<Document, Failure> {
    let options = LoadOptions { max_decompressed_size: Some(max_bytes), ..LoadOptions::default() };
    Document::load_mem_with_options(bytes, options).map_err(|e| pdf_failure(&e, limits, "PDF could not be parsed"))
}

/// The budget left once the page's content streams are inflated (within it): the pages
/// together may not inflate past the document limit, so a thousand pages of a million zeros
/// each cost no more than one.
fn charge_page(document: &Document, page_id: ObjectId, budget: usize, limits: &Limits) -> Result<usize, Failure> {
    let content = document.get_page_content_with_limit(page_id, budget).map_err(|e| pdf_failure(&e, limits, "PDF page could not be read"))?;
    Ok(budget.saturating_sub(content.len()))
}

/// Appends the text of page `number`, ending its line; text lopdf cannot decode is left out.
fn push_page_text(document: &Document, number: u32, max_bytes: usize, buf: &mut TextBuf, limits: &Limits) -> Result<(), Failure> {
    for chunk in document.extract_text_chunks_with_limit(&[number], max_bytes) {
        match chunk {
            Ok(text) => buf.push_str(&text),
            Err(e @ Error::Decompress(DecompressError::MemoryLimitExceeded { .. })) => return Err(pdf_failure(&e, limits, "")),
            Err(_) => {}
        }
    }
    if !buf.ends_line() {
        buf.push('\n');
    }
    Ok(())
}

/// A lopdf error as a failure: a stream over the byte limit is "too large", anything else
/// unreadable, reported after `context`.
fn pdf_failure(error: &Error, limits: &Limits, context: &str) -> Failure {
    match error {
        Error::Decompress(DecompressError::MemoryLimitExceeded { .. }) => {
            Failure::too_large(format!("PDF expands beyond {} (compression bomb?)", size(limits.max_document_bytes)))
        }
        e => Failure::unreadable(format!("{context}: {e}")),
    }
}
