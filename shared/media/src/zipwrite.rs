//! A streaming zip writer whose progress can be saved and resumed in another process.
//!
//! Entries are deflated (method 8) with data descriptors (general purpose flag bit 3): the
//! local header is written before the data, so nothing already written is ever rewritten, and
//! the CRC and sizes follow the data. The output is handed out as it is produced
//! ([`ZipWriter::take_output`]), so a caller can upload it in parts (S3 multipart upload) and
//! hold only the bytes of one part.
//!
//! [`ZipWriter::checkpoint`] ends the deflate data so far with a *full flush* (byte-aligned, no
//! back-reference across it), so that a fresh compressor can continue the entry: the state it
//! answers ([`ZipState`]: bytes written, the central directory entries so far, and the entry
//! in progress with its running CRC and sizes) is all another process needs to go on writing
//! the same archive with [`ZipWriter::resume`]. This is how parallel gzip tools join
//! independently compressed blocks into one deflate stream.
//!
//! No zip64: an archive whose size or any entry's size reaches 4 GiB, or that holds more than
//! 65,535 entries, is refused with [`ZipError::TooLarge`].

use flate2::{Compress, Compression, FlushCompress, Status};
use serde::{Deserialize, Serialize};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// Data descriptor (bit 3) and UTF-8 names (bit 11).
const FLAGS: u16 = 0x0808;
const DEFLATE: u16 = 8;
const VERSION: u16 = 20;
const MAX_ENTRIES: usize = 65_535;

/// Why the archive cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipError {
    /// The archive or an entry reached 4 GiB, or it holds more than 65,535 entries (no zip64).
    #[error("the archive is too large for zip without zip64: {0}")]
    TooLarge(&'static str),
    /// An entry was written without being started, or started inside another.
    #[error("zip writer misuse: {0}")]
    Misuse(&'static str),
    /// The compressor failed.
    #[error("deflate failed: {0}")]
    Deflate(String),
}

/// A finished entry, as the central directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Name.
    #[serde(rename = "n")]
    pub name: String,
    /// CRC-32 of the uncompressed data.
    #[serde(rename = "c")]
    pub crc: u32,
    /// Compressed bytes.
    #[serde(rename = "z")]
    pub compressed: u64,
    /// Uncompressed bytes.
    #[serde(rename = "u")]
    pub uncompressed: u64,
    /// Offset of its local header.
    #[serde(rename = "o")]
    pub offset: u64,
}

/// Where a [`ZipWriter`] is: enough to resume it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZipState {
    /// Bytes of the archive written so far (handed out or not).
    pub written: u64,
    /// The entries finished so far.
    pub entries: Vec<Entry>,
    /// The entry being written, its CRC and sizes so far.
    pub open: Option<Entry>,
    /// MS-DOS date and time of every entry.
    pub dos_time: (u16, u16),
}

/// The streaming writer.
pub struct ZipWriter {
    state: ZipState,
    out: Vec<u8>,
    compress: Option<Compress>,
    hasher: crc32fast::Hasher,
}

impl ZipWriter {
    /// A new archive whose entries are dated `unix_secs` (UTC).
    pub fn new(unix_secs: i64) -> ZipWriter {
        ZipWriter::resume(ZipState { dos_time: dos_date_time(unix_secs), ..ZipState::default() })
    }

    /// Continues an archive from a state [`ZipWriter::checkpoint`] answered: the bytes it
    /// produces follow the ones written before that checkpoint.
    pub fn resume(state: ZipState) -> ZipWriter {
        let hasher = match &state.open {
            Some(open) => crc32fast::Hasher::new_with_initial_len(open.crc, open.uncompressed),
            None => crc32fast::Hasher::new(),
        };
        let compress = state.open.as_ref().map(|_| Compress::new(Compression::default(), false));
        ZipWriter { state, out: Vec::new(), compress, hasher }
    }

    /// Bytes written so far, including those not yet taken.
    pub fn written(&self) -> u64 {
        self.state.written
    }

    /// Bytes produced and not yet taken.
    pub fn pending(&self) -> usize {
        self.out.len()
    }

    /// Whether an entry is being written.
    pub fn in_entry(&self) -> bool {
        self.state.open.is_some()
    }

    /// The entries finished so far.
    pub fn entries(&self) -> &[Entry] {
        &self.state.entries
    }

    /// Hands out the bytes produced so far.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.state.written += bytes.len() as u64;
    }

    /// Starts an entry named `name` (its local header).
    pub fn start_entry(&mut self, name: &str) -> Result<(), ZipError> {
        if self.state.open.is_some() {
            return Err(ZipError::Misuse("an entry is already open"));
        }
        if self.state.entries.len() >= MAX_ENTRIES {
            return Err(ZipError::TooLarge("more than 65,535 entries"));
        }
        let name_len = u16::try_from(name.len()).map_err(|_| ZipError::TooLarge("an entry name over 65,535 bytes"))?;
        let offset = self.state.written;
        let mut h = Vec::with_capacity(30 + name.len());
        h.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&FLAGS.to_le_bytes());
        h.extend_from_slice(&DEFLATE.to_le_bytes());
        h.extend_from_slice(&self.state.dos_time.1.to_le_bytes());
        h.extend_from_slice(&self.state.dos_time.0.to_le_bytes());
        h.extend_from_slice(&[0; 12]); // CRC and sizes: in the data descriptor
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        self.emit(&h);
        self.state.open = Some(Entry { name: name.to_owned(), crc: 0, compressed: 0, uncompressed: 0, offset });
        self.hasher = crc32fast::Hasher::new();
        self.compress = Some(Compress::new(Compression::default(), false));
        Ok(())
    }

    /// Writes data of the open entry.
    pub fn write(&mut self, data: &[u8]) -> Result<(), ZipError> {
        if self.state.open.is_none() {
            return Err(ZipError::Misuse("no entry is open"));
        }
        self.hasher.update(data);
        if let Some(open) = &mut self.state.open {
            open.uncompressed += data.len() as u64;
            if open.uncompressed >= u64::from(u32::MAX) {
                return Err(ZipError::TooLarge("an entry of 4 GiB or more"));
            }
        }
        self.deflate(data, FlushCompress::None)
    }

    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> Result<(), ZipError> {
        let Some(mut compress) = self.compress.take() else { return Err(ZipError::Misuse("no entry is open")) };
        let start = self.out.len();
        let result = loop {
            self.out.reserve((input.len() / 2).max(16 * 1024));
            let spare = self.out.capacity() - self.out.len();
            let (before_in, before_out) = (compress.total_in(), compress.total_out());
            let status = match compress.compress_vec(input, &mut self.out, flush) {
                Ok(status) => status,
                Err(e) => break Err(ZipError::Deflate(e.to_string())),
            };
            let consumed = usize::try_from(compress.total_in() - before_in).unwrap_or(input.len());
            let produced = usize::try_from(compress.total_out() - before_out).unwrap_or(0);
            input = &input[consumed.min(input.len())..];
            let room_left = produced < spare;
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                FlushCompress::None => input.is_empty(),
                _ => input.is_empty() && room_left,
            };
            if done {
                break Ok(());
            }
        };
        let produced = (self.out.len() - start) as u64;
        self.state.written += produced;
        if let Some(open) = &mut self.state.open {
            open.compressed += produced;
        }
        self.compress = Some(compress);
        result
    }

    /// Ends the open entry: the rest of its deflate data, then its data descriptor.
    pub fn finish_entry(&mut self) -> Result<(), ZipError> {
        self.deflate(&[], FlushCompress::Finish)?;
        let mut open = self.state.open.take().ok_or(ZipError::Misuse("no entry is open"))?;
        self.compress = None;
        open.crc = std::mem::replace(&mut self.hasher, crc32fast::Hasher::new()).finalize();
        let compressed = u32::try_from(open.compressed).map_err(|_| ZipError::TooLarge("an entry of 4 GiB or more"))?;
        let uncompressed = u32::try_from(open.uncompressed).map_err(|_| ZipError::TooLarge("an entry of 4 GiB or more"))?;
        let mut d = Vec::with_capacity(16);
        d.extend_from_slice(&DATA_DESCRIPTOR.to_le_bytes());
        d.extend_from_slice(&open.crc.to_le_bytes());
        d.extend_from_slice(&compressed.to_le_bytes());
        d.extend_from_slice(&uncompressed.to_le_bytes());
        self.emit(&d);
        self.state.entries.push(open);
        self.check_size()
    }

    fn check_size(&self) -> Result<(), ZipError> {
        if self.state.written >= u64::from(u32::MAX) { Err(ZipError::TooLarge("an archive of 4 GiB or more")) } else { Ok(()) }
    }

    /// Makes everything written so far resumable: ends the open entry's deflate data so far
    /// with a full flush, and answers the state that [`ZipWriter::resume`] continues from once
    /// every byte produced until now ([`ZipWriter::take_output`]) is stored.
    pub fn checkpoint(&mut self) -> Result<ZipState, ZipError> {
        if self.state.open.is_some() {
            self.deflate(&[], FlushCompress::Full)?;
            let crc = self.hasher.clone().finalize();
            if let Some(open) = &mut self.state.open {
                open.crc = crc;
            }
            // Continue as a resumed writer would: with a fresh compressor.
            self.compress = Some(Compress::new(Compression::default(), false));
        }
        self.check_size()?;
        Ok(self.state.clone())
    }

    /// Writes the central directory and its end record: the archive is complete.
    pub fn finish(&mut self) -> Result<(), ZipError> {
        if self.state.open.is_some() {
            return Err(ZipError::Misuse("an entry is still open"));
        }
        let start = self.state.written;
        let mut cd = Vec::new();
        for e in &self.state.entries {
            let name_len = u16::try_from(e.name.len()).map_err(|_| ZipError::TooLarge("an entry name over 65,535 bytes"))?;
            let field = |v: u64| u32::try_from(v).map_err(|_| ZipError::TooLarge("an archive of 4 GiB or more"));
            cd.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
            cd.extend_from_slice(&VERSION.to_le_bytes()); // made by
            cd.extend_from_slice(&VERSION.to_le_bytes()); // needed
            cd.extend_from_slice(&FLAGS.to_le_bytes());
            cd.extend_from_slice(&DEFLATE.to_le_bytes());
            cd.extend_from_slice(&self.state.dos_time.1.to_le_bytes());
            cd.extend_from_slice(&self.state.dos_time.0.to_le_bytes());
            cd.extend_from_slice(&e.crc.to_le_bytes());
            cd.extend_from_slice(&field(e.compressed)?.to_le_bytes());
            cd.extend_from_slice(&field(e.uncompressed)?.to_le_bytes());
            cd.extend_from_slice(&name_len.to_le_bytes());
            cd.extend_from_slice(&[0; 8]); // extra and comment lengths, disk, internal attributes
            cd.extend_from_slice(&0u32.to_le_bytes()); // external attributes
            cd.extend_from_slice(&field(e.offset)?.to_le_bytes());
            cd.extend_from_slice(e.name.as_bytes());
        }
        let count = u16::try_from(self.state.entries.len()).map_err(|_| ZipError::TooLarge("more than 65,535 entries"))?;
        let size = u32::try_from(cd.len()).map_err(|_| ZipError::TooLarge("a central directory of 4 GiB or more"))?;
        let offset = u32::try_from(start).map_err(|_| ZipError::TooLarge("an archive of 4 GiB or more"))?;
        cd.extend_from_slice(&END_OF_CENTRAL_DIRECTORY.to_le_bytes());
        cd.extend_from_slice(&[0; 4]); // this disk, the directory's disk
        cd.extend_from_slice(&count.to_le_bytes());
        cd.extend_from_slice(&count.to_le_bytes());
        cd.extend_from_slice(&size.to_le_bytes());
        cd.extend_from_slice(&offset.to_le_bytes());
        cd.extend_from_slice(&0u16.to_le_bytes());
        self.emit(&cd);
        self.check_size()
    }
}

/// MS-DOS (date, time) of epoch seconds, UTC; 1980-01-01 for anything earlier.
pub fn dos_date_time(unix_secs: i64) -> (u16, u16) {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix_secs) else { return (0x21, 0) };
    let year = t.year();
    if !(1980..=2107).contains(&year) {
        return (0x21, 0);
    }
    let date = ((year - 1980) << 9) | (i32::from(u8::from(t.month())) << 5) | i32::from(t.day());
    let time = (u32::from(t.hour()) << 11) | (u32::from(t.minute()) << 5) | (u32::from(t.second()) / 2);
    (u16::try_from(date).unwrap_or(0x21), u16::try_from(time).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Read;

    use super::*;

    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        (0..archive.len())
            .map(|i| {
                let mut f = archive.by_index(i).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                (f.name().unwrap().into_owned(), data)
            })
            .collect()
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x & 0xff) as u8
            })
            .collect()
    }

    #[test]
    fn entries_read_back_with_the_zip_crate() {
        let mut w = ZipWriter::new(1_700_000_000);
        let text = "{\"id\":1}\n".repeat(10_000);
        let binary = noise(300_000, 7);
        let mut out = Vec::new();
        w.start_entry("tasks.jsonl").unwrap();
        w.write(text.as_bytes()).unwrap();
        w.finish_entry().unwrap();
        w.start_entry("files/01/photo é.bin").unwrap();
        for chunk in binary.chunks(7_000) {
            w.write(chunk).unwrap();
            out.extend(w.take_output());
        }
        w.finish_entry().unwrap();
        w.start_entry("empty.jsonl").unwrap();
        w.finish_entry().unwrap();
        w.finish().unwrap();
        out.extend(w.take_output());
        assert_eq!(out.len() as u64, w.written());
        let entries = read_back(&out);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], ("tasks.jsonl".to_owned(), text.into_bytes()));
        assert_eq!(entries[1], ("files/01/photo é.bin".to_owned(), binary));
        assert_eq!(entries[2], ("empty.jsonl".to_owned(), Vec::new()));
    }

    #[test]
    fn a_resumed_writer_continues_the_same_archive_mid_entry() {
        let lines: Vec<String> = (0..5_000).map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 50))).collect();
        let blob = noise(200_000, 3);
        let mut stored = Vec::new();
        let mut w = ZipWriter::new(0);
        w.start_entry("a.jsonl").unwrap();
        for (i, line) in lines.iter().enumerate() {
            w.write(line.as_bytes()).unwrap();
            if i % 1_000 == 999 {
                // A checkpoint, then the process dies: a new writer resumes from the state.
                let state = w.checkpoint().unwrap();
                stored.extend(w.take_output());
                let json = serde_json::to_string(&state).unwrap();
                w = ZipWriter::resume(serde_json::from_str(&json).unwrap());
                assert_eq!(w.written(), stored.len() as u64);
            }
        }
        w.finish_entry().unwrap();
        w.start_entry("b.bin").unwrap();
        w.write(&blob[..100_000]).unwrap();
        // Checkpointing without resuming goes on in the same writer.
        let _ = w.checkpoint().unwrap();
        w.write(&blob[100_000..]).unwrap();
        w.finish_entry().unwrap();
        let state = w.checkpoint().unwrap();
        stored.extend(w.take_output());
        let mut w = ZipWriter::resume(state);
        w.finish().unwrap();
        stored.extend(w.take_output());
        let entries = read_back(&stored);
        assert_eq!(entries[0].1, lines.concat().into_bytes());
        assert_eq!(entries[1].1, blob);
    }

    #[test]
    fn misuse_and_dates() {
        let mut w = ZipWriter::new(0);
        assert!(matches!(w.write(b"x"), Err(ZipError::Misuse(_))));
        w.start_entry("a").unwrap();
        assert!(matches!(w.start_entry("b"), Err(ZipError::Misuse(_))));
        assert!(matches!(w.finish(), Err(ZipError::Misuse(_))));
        // 2024-02-29 13:45:30 UTC
        let (date, time) = dos_date_time(1_709_214_330);
        assert_eq!((date >> 9, (date >> 5) & 0xf, date & 0x1f), (44, 2, 29));
        assert_eq!((time >> 11, (time >> 5) & 0x3f, (time & 0x1f) * 2), (13, 45, 30));
        assert_eq!(dos_date_time(0), (0x21, 0));
    }
}
