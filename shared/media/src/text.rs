//! Text kept within the character limit, and the text of a text file.

use crate::process::{Extract, Failure};
use crate::{Limits, Sniffed};

/// Text gathered piece by piece (pages, paragraphs) that stops growing at a character limit and
/// remembers whether anything was cut: documents are summarised, not copied whole.
pub(crate) struct TextBuf {
    text: String,
    chars: usize,
    max_chars: usize,
    truncated: bool,
}

impl TextBuf {
    /// An empty buffer that keeps at most `max_chars` characters.
    pub(crate) fn new(max_chars: usize) -> Self {
        TextBuf { text: String::new(), chars: 0, max_chars, truncated: false }
    }

    /// Appends `piece`, or as much of it as fits.
    pub(crate) fn push_str(&mut self, piece: &str) {
        let room = self.max_chars - self.chars;
        match piece.char_indices().nth(room) {
            Some((cut, _)) => {
                self.text.push_str(&piece[..cut]);
                self.chars = self.max_chars;
                self.truncated = true;
            }
            None => {
                self.text.push_str(piece);
                self.chars += piece.chars().count();
            }
        }
    }

    /// Appends one character, if it fits.
    pub(crate) fn push(&mut self, c: char) {
        if self.chars < self.max_chars {
            self.text.push(c);
            self.chars += 1;
        } else {
            self.truncated = true;
        }
    }

    /// Whether the text so far ends a line (or is empty): a page need not add another.
    pub(crate) fn ends_line(&self) -> bool {
        self.text.is_empty() || self.text.ends_with('\n')
    }

    /// Whether the limit was reached and text cut: the caller can stop reading.
    pub(crate) fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Marks the text as incomplete for a reason other than its length (pages not read).
    pub(crate) fn mark_truncated(&mut self) {
        self.truncated = true;
    }

    /// The summary of a document of `kind`, with its page count if it has pages.
    pub(crate) fn into_extract(self, kind: Sniffed, pages: Option<u32>) -> Extract {
        Extract { kind, text: self.text, pages, characters: self.chars, truncated: self.truncated }
    }
}

/// The text of a text file, without a byte-order mark, cut at the character limit.
pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extract, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|e| Failure::unreadable(format!("text is not valid UTF-8: {e}")))?;
    let mut buf = TextBuf::new(limits.max_text_chars);
    buf.push_str(text.strip_prefix('\u{feff}').unwrap_or(text));
    Ok(buf.into_extract(Sniffed::Text, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_the_character_limit_not_the_byte() {
        let mut buf = TextBuf::new(5);
        buf.push_str("äö");
        buf.push('ü');
        assert!(!buf.is_truncated());
        buf.push_str("ßéx");
        let extract = buf.into_extract(Sniffed::Text, None);
        assert_eq!((extract.text.as_str(), extract.characters, extract.truncated), ("äöüßé", 5, true));
    }

    #[test]
    fn exactly_the_limit_is_not_truncated() {
        let mut buf = TextBuf::new(3);
        buf.push_str("abc");
        buf.push_str("");
        assert!(!buf.is_truncated());
        buf.push('d');
        assert!(buf.is_truncated());
    }
}
