//! Word documents: the text of `word/document.xml`, inflated under a byte limit that counts
//! the bytes actually inflated, not the size the zip's header claims.

use std::io::{Cursor, Read};

use zip::ZipArchive;

use crate::limits::size;
use crate::process::{Extract, Failure};
use crate::sniff::DOCX_BODY;
use crate::text::TextBuf;
use crate::{Limits, Sniffed};

/// The text of a DOCX: one line per paragraph.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extract, Failure> {
    let xml = read_body(bytes, limits)?;
    let mut buf = TextBuf::new(limits.max_text_chars);
    body_text(&String::from_utf8_lossy(&xml), &mut buf);
    Ok(buf.into_extract(Sniffed::Docx, None))
}

/// The inflated bytes of `word/document.xml`, refused past `max_document_bytes`. The entry is
/// read through `take(limit + 1)`: a bomb is caught by what it inflates to, whatever its
/// header claims, and never held in memory past the limit.
fn read_body(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, Failure> {
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| Failure::unreadable(format!("document is not a readable zip: {e}")))?;
    if archive.len() > limits.max_archive_entries {
        return Err(Failure::too_large(format!("document has {} zip entries, above the {} limit", archive.len(), limits.max_archive_entries)));
    }
    let entry = archive.by_name(DOCX_BODY).map_err(|e| Failure::unreadable(format!("document has no readable {DOCX_BODY}: {e}")))?;
    let mut xml = Vec::new();
    entry
        .take(limits.max_document_bytes.saturating_add(1))
        .read_to_end(&mut xml)
        .map_err(|e| Failure::unreadable(format!("document could not be inflated: {e}")))?;
    if u64::try_from(xml.len()).map_or(true, |len| len > limits.max_document_bytes) {
        return Err(Failure::too_large(format!("document expands beyond {} (zip bomb?)", size(limits.max_document_bytes))));
    }
    Ok(xml)
}

/// Where a tag stands: `<w:p>`, `</w:p>` or `<w:p/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Open,
    Close,
    Empty,
}

/// The text of WordprocessingML, by a scan of its tags rather than a parser: the text of
/// `<w:t>` elements, a newline after each paragraph, and the tabs and breaks inside runs (a
/// `<w:tab>` outside a run is a tab stop, not a tab). Stops once the buffer is full.
fn body_text(xml: &str, buf: &mut TextBuf) {
    let (mut in_run, mut in_text) = (false, false);
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        if in_text {
            push_unescaped(&rest[..open], buf);
        }
        let Some(length) = rest[open..].find('>') else { break };
        let (name, tag) = parse_tag(&rest[open + 1..open + length]);
        rest = &rest[open + length + 1..];
        match (name, tag) {
            ("w:r", Tag::Open) => in_run = true,
            ("w:r", _) => in_run = false,
            ("w:t", Tag::Open) => in_text = true,
            ("w:t", _) => in_text = false,
            ("w:p", Tag::Close | Tag::Empty) => buf.push('\n'),
            ("w:tab", _) if in_run => buf.push('\t'),
            ("w:br" | "w:cr", _) if in_run => buf.push('\n'),
            _ => {}
        }
        if buf.is_truncated() {
            break;
        }
    }
}

/// The name of the tag between `<` and `>`, and where it stands.
fn parse_tag(inside: &str) -> (&str, Tag) {
    let (inside, tag) = match inside.strip_prefix('/') {
        Some(name) => (name, Tag::Close),
        None if inside.ends_with('/') => (inside, Tag::Empty),
        None => (inside, Tag::Open),
    };
    let name = inside.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or_default();
    (name, tag)
}

/// Appends XML character data, its entity and character references replaced. A stray `&` is
/// kept as it is.
fn push_unescaped(mut data: &str, buf: &mut TextBuf) {
    while let Some(amp) = data.find('&') {
        buf.push_str(&data[..amp]);
        let after = &data[amp + 1..];
        // References are short: look no further than a few bytes for the `;`.
        let reference = after.bytes().take(12).position(|b| b == b';').and_then(|semi| entity(&after[..semi]).map(|c| (c, semi)));
        match reference {
            Some((c, semi)) => {
                buf.push(c);
                data = &after[semi + 1..];
            }
            None => {
                buf.push('&');
                data = after;
            }
        }
    }
    buf.push_str(data);
}

/// The character an entity or character reference (without `&` and `;`) stands for.
fn entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(xml: &str, max_chars: usize) -> (String, bool) {
        let mut buf = TextBuf::new(max_chars);
        body_text(xml, &mut buf);
        let extract = buf.into_extract(Sniffed::Docx, None);
        (extract.text, extract.truncated)
    }

    #[test]
    fn paragraphs_runs_tabs_and_references() {
        let xml = r#"<?xml version="1.0"?><w:document><w:body>
            <w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>
              <w:r><w:t xml:space="preserve">Fish &amp; chips </w:t></w:r><w:r><w:tab/><w:t>&lt;&#233;&#x1F41F;&gt; &nope; a&b</w:t></w:r></w:p>
            <w:p/>
            <w:p><w:r><w:t>Line</w:t><w:br/><w:t>two</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t/></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
        </w:body></w:document>"#;
        assert_eq!(text_of(xml, 1000), ("Fish & chips \t<é🐟> &nope; a&b\n\nLine\ntwo\ncell\n".to_owned(), false));
    }

    #[test]
    fn stops_at_the_limit() {
        let xml = "<w:p><w:r><w:t>abcdef</w:t></w:r></w:p><w:p><w:r><w:t>ghi</w:t></w:r></w:p>";
        assert_eq!(text_of(xml, 4), ("abcd".to_owned(), true));
    }

    #[test]
    fn malformed_markup_ends_quietly() {
        assert_eq!(text_of("<w:p><w:r><w:t>half", 100), (String::new(), false));
        assert_eq!(text_of("<w:t>a</w:t><", 100), ("a".to_owned(), false));
        assert_eq!(text_of("", 100), (String::new(), false));
    }
}
