//! Splitting a document's extracted text into overlapping chunks of a token budget, at the
//! most natural boundary that fits (paragraph, then line, sentence, word), each with the page
//! it begins on and its character offsets in the text.
//!
//! Token-aware with the same estimate the budgets use ([`domain::chat::estimate_tokens`], kept
//! as running sums): a
//! chunk stays under [`CHUNK_TOKENS`] by that estimate, which never counts fewer tokens than
//! Titan's tokenizer does for English text, so no chunk is cut by the embedding model (its
//! limit is 8,192 tokens). Consecutive chunks share about [`OVERLAP_TOKENS`] of text, so a
//! sentence cut by a boundary is whole in one of them.

/// The most tokens of one chunk (by the estimate).
pub const CHUNK_TOKENS: u64 = 400;
/// Tokens a chunk repeats from the end of the one before.
pub const OVERLAP_TOKENS: u64 = 60;
/// What separates the pages of a PDF's extracted text (the files function's `media` crate
/// writes it, as pdftotext does).
pub const PAGE_BREAK: char = '\u{c}';

/// One chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    /// Character offsets in the whole text: `[start, end)`.
    pub start: usize,
    pub end: usize,
    /// 1-based page the chunk's new text begins on (past the overlap it repeats; 1 for text
    /// without pages).
    pub page: u32,
}

/// A piece of text that chunks are packed from, with what the token estimate counts in it.
#[derive(Debug, Clone, Copy)]
struct Unit {
    start: usize,
    end: usize,
    bytes: u64,
    words: u64,
    marks: u64,
}

/// Running sums over units, so that the estimate of any run of units costs O(1): the sums of
/// bytes, words and marks (a word cut between two units counts in both, so the sum never
/// counts fewer tokens than the text holds).
struct Sums(Vec<(u64, u64, u64)>);

impl Sums {
    fn new(units: &[Unit]) -> Sums {
        let mut sums = Vec::with_capacity(units.len() + 1);
        let mut acc = (0, 0, 0);
        sums.push(acc);
        for u in units {
            acc = (acc.0 + u.bytes, acc.1 + u.words, acc.2 + u.marks);
            sums.push(acc);
        }
        Sums(sums)
    }

    /// The estimate of units `i..j`, as [`estimate_tokens`] counts.
    fn tokens(&self, i: usize, j: usize) -> u64 {
        let (a, b) = (self.0[i], self.0[j]);
        (b.0 - a.0).div_ceil(4).max((b.1 - a.1) + (b.2 - a.2))
    }
}

/// The pieces text is cut into before packing, in one pass: each ends at the strongest
/// boundary (a line or page break, a sentence end, a space once the piece is long), and a piece
/// that reaches half a chunk without one is cut where it is (on a character boundary).
fn pieces(text: &str) -> Vec<Unit> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut unit = Unit { start: 0, end: 0, bytes: 0, words: 0, marks: 0 };
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let space = c.is_whitespace();
        if !space && !in_word {
            unit.words += 1;
        }
        in_word = !space;
        if c.is_ascii_punctuation() {
            unit.marks += 1;
        }
        unit.bytes += u64::try_from(c.len_utf8()).unwrap_or(4);
        let boundary = match c {
            '\n' | PAGE_BREAK => true,
            '.' | '!' | '?' => bytes.get(end).is_none_or(u8::is_ascii_whitespace),
            ' ' | '\t' => end - unit.start > 200,
            _ => false,
        };
        let full = unit.bytes.div_ceil(4).max(unit.words + unit.marks) >= CHUNK_TOKENS / 2;
        if boundary || full {
            unit.end = end;
            out.push(unit);
            unit = Unit { start: end, end, bytes: 0, words: 0, marks: 0 };
            // a word cut here counts again in the next piece
            in_word = false;
        }
    }
    if unit.start < text.len() {
        unit.end = text.len();
        out.push(unit);
    }
    out
}

/// Counts characters and page breaks up to a byte offset that only grows.
#[derive(Default)]
struct Cursor {
    byte: usize,
    chars: usize,
    breaks: u32,
}

impl Cursor {
    /// (characters before `byte`, 1-based page at `byte`).
    fn advance(&mut self, text: &str, byte: usize) -> (usize, u32) {
        if byte > self.byte {
            let seen = &text[self.byte..byte];
            self.chars += seen.chars().count();
            self.breaks = self.breaks.saturating_add(u32::try_from(seen.matches(PAGE_BREAK).count()).unwrap_or(u32::MAX));
            self.byte = byte;
        }
        (self.chars, self.breaks.saturating_add(1))
    }
}

fn lead_chars(lead: &str) -> usize {
    lead.chars().count()
}

/// The chunks of `text`.
pub fn chunks(text: &str) -> Vec<Chunk> {
    let units = pieces(text);
    let sums = Sums::new(&units);
    let mut result = Vec::new();
    let mut i = 0;
    // Chunk starts and ends only move forward: two cursors count characters and pages.
    let (mut at_start, mut at_end, mut at_fresh) = (Cursor::default(), Cursor::default(), Cursor::default());
    // Where the text no chunk has covered yet begins: a chunk's page is the page of its new
    // text, not of the overlap it repeats.
    let mut covered = 0;
    while i < units.len() {
        let start = units[i].start;
        let mut end = units[i].end;
        let mut j = i + 1;
        while j < units.len() && sums.tokens(i, j + 1) <= CHUNK_TOKENS {
            end = units[j].end;
            j += 1;
        }
        let body = text[start..end].trim_matches(|c: char| c.is_whitespace() || c == PAGE_BREAK);
        if !body.is_empty() {
            // The page the chunk's first words are on.
            let lead = text[start..end].len() - text[start..end].trim_start_matches(|c: char| c.is_whitespace() || c == PAGE_BREAK).len();
            let (first, _) = at_start.advance(text, start + lead);
            let (last, _) = at_end.advance(text, end);
            let fresh = covered.max(start + lead);
            let skipped = text[fresh..end].len() - text[fresh..end].trim_start_matches(|c: char| c.is_whitespace() || c == PAGE_BREAK).len();
            let (_, page) = at_fresh.advance(text, (fresh + skipped).min(end));
            covered = end;
            result.push(Chunk { text: body.replace(PAGE_BREAK, "\n"), start: first - lead_chars(&text[start..start + lead]), end: last, page });
        }
        if j >= units.len() {
            break;
        }
        // Step back over the last units while they fit the overlap, but always move forward.
        let mut next = j;
        while next > i + 1 && sums.tokens(next - 1, j) <= OVERLAP_TOKENS {
            next -= 1;
        }
        i = next;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::chat::estimate_tokens;

    #[test]
    fn short_text_is_one_chunk_on_page_one() {
        let c = chunks("Hello world. This is short.");
        assert_eq!(c, vec![Chunk { text: "Hello world. This is short.".into(), start: 0, end: 27, page: 1 }]);
        assert!(chunks("  \n\u{c} ").is_empty());
    }

    #[test]
    fn long_text_is_cut_under_the_budget_with_overlap_and_covers_everything() {
        let sentence = "The quarterly revenue of the northern region grew by twelve percent. ";
        let text = sentence.repeat(200);
        let c = chunks(&text);
        assert!(c.len() > 5, "{}", c.len());
        for (k, chunk) in c.iter().enumerate() {
            assert!(estimate_tokens(&chunk.text) <= CHUNK_TOKENS, "chunk {k} too long");
            if k > 0 {
                assert!(chunk.start < c[k - 1].end, "chunk {k} overlaps the one before");
                assert!(chunk.start > c[k - 1].start, "chunk {k} moves forward");
            }
        }
        assert_eq!(c[0].start, 0);
        assert_eq!(c.last().unwrap().end, text.chars().count());
    }

    #[test]
    fn pages_follow_form_feeds() {
        let page = "word ".repeat(300);
        let text = format!("{page}\n\u{c}{page}\n\u{c}{page}Last page text.\n");
        let c = chunks(&text);
        assert_eq!(c.first().unwrap().page, 1);
        assert!(c.windows(2).all(|w| w[0].page <= w[1].page));
        assert!(c.iter().any(|k| k.page == 2));
        assert_eq!(c.last().unwrap().page, 3);
        assert!(c.last().unwrap().text.ends_with("Last page text."));
        assert!(c.iter().all(|k| !k.text.contains(PAGE_BREAK)));
    }

    #[test]
    fn long_lines_and_tiny_lines_are_chunked_within_the_budget() {
        // 2 MB without a line break, and 400,000 one-character lines (the packing keeps running
        // sums, so this is linear; `make bench` measures ingestion).
        let long = "abcdefghij".repeat(200_000);
        let tiny = "1\n".repeat(400_000);
        for text in [long, tiny] {
            let c = chunks(&text);
            assert!(c.len() > 100);
            assert!(c.iter().all(|k| estimate_tokens(&k.text) <= CHUNK_TOKENS));
        }
    }

    #[test]
    fn punctuation_runs_stay_within_the_budget() {
        let text = "!".repeat(10_000);
        assert!(chunks(&text).iter().all(|k| estimate_tokens(&k.text) <= CHUNK_TOKENS));
    }

    #[test]
    fn a_line_without_spaces_is_cut_by_characters_on_char_boundaries() {
        let text = "é".repeat(5_000);
        let c = chunks(&text);
        assert!(c.len() > 2);
        assert!(c.iter().all(|k| estimate_tokens(&k.text) <= CHUNK_TOKENS));
    }
}
