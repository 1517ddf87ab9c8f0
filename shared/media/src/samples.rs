//! Real files made in code, for tests, benchmarks and the demo: nothing binary is checked in,
//! and each generator makes exactly the file its name says (a PNG that any viewer opens, a
//! DOCX that Word opens, a PE header that `file` recognises), including hostile ones (bombs,
//! a corrupt PDF, an executable). Behind the `samples` feature: never in the Lambda.
//!
//! The generators panic only on a bug of their own (encoding into memory cannot fail
//! otherwise), which is why they `expect`.

use std::io::{Cursor, Write};

use flate2::Compression;
use flate2::write::ZlibEncoder;
use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage, RgbaImage};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// A PNG of `width`×`height` RGB pixels: a smooth gradient, so it compresses like a picture.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = gradient(width, height, 0);
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(image.as_raw(), width, height, ExtendedColorType::Rgb8).expect("a PNG encodes into memory");
    out
}

/// A JPEG of `width`×`height` at `quality` (1–100): a gradient with grain, which JPEG cannot
/// compress away, so the size is that of a photo: 2000×1500 at quality 95 is about 2 MB.
pub fn jpeg(width: u32, height: u32, quality: u8) -> Vec<u8> {
    let image = gradient(width, height, PHOTO_GRAIN);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode(image.as_raw(), width, height, ExtendedColorType::Rgb8).expect("a JPEG encodes into memory");
    out
}

/// A GIF of `width`×`height` (keep it small: the encoder quantises every pixel).
pub fn gif(width: u32, height: u32) -> Vec<u8> {
    let image = with_alpha(&gradient(width, height, 0));
    let mut out = Vec::new();
    GifEncoder::new(&mut out).encode(image.as_raw(), width, height, ExtendedColorType::Rgba8).expect("a GIF encodes into memory");
    out
}

/// A lossless WebP of `width`×`height`, half transparent on its right.
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut image = with_alpha(&gradient(width, height, 0));
    for (x, _, pixel) in image.enumerate_pixels_mut() {
        if x >= width / 2 {
            pixel.0[3] = 96;
        }
    }
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out).encode(image.as_raw(), width, height, ExtendedColorType::Rgba8).expect("a WebP encodes into memory");
    out
}

/// A decompression bomb: a PNG whose header claims `width`×`height` one-bit pixels (20000×20000
/// needs 400 million pixels decoded, 1.6 GB as RGBA) but whose single IDAT holds only the
/// first rows, so the file is a few hundred bytes. Built chunk by chunk with real CRCs: only
/// the header's dimensions can stop it before the pixels are allocated.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 1, greyscale, deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let row_bytes = usize::try_from(width.div_ceil(8)).expect("a row fits in memory") + 1;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib(&vec![0; row_bytes * 16]));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// Appends a PNG chunk: length, type, data, and the CRC-32 of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).expect("a chunk is under 4 GiB").to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// `data` as a zlib stream, as PNG's IDAT holds it.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data).expect("writing into memory");
    encoder.finish().expect("writing into memory")
}

/// A PDF with one page per entry of `pages`, each showing its text in Helvetica; the text
/// (ASCII) comes back from [`crate::process`]. Content streams are compressed as usual.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! { "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica", "Encoding" => "WinAnsiEncoding" });
    let resources_id = document.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let kids: Vec<Object> = pages.iter().map(|text| pdf_page(&mut document, pages_id, text).into()).collect();
    let count = i64::try_from(kids.len()).expect("a page count fits in i64");
    let tree = dictionary! {
        "Type" => "Pages",
        "Kids" => kids,
        "Count" => count,
        "Resources" => resources_id,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    document.objects.insert(pages_id, Object::Dictionary(tree));
    let catalog_id = document.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    document.trailer.set("Root", catalog_id);
    document.compress();
    let mut out = Vec::new();
    document.save_to(&mut out).expect("a PDF saves into memory");
    out
}

/// Adds a page showing `text` under `parent`, and returns its id.
fn pdf_page(document: &mut Document, parent: lopdf::ObjectId, text: &str) -> lopdf::ObjectId {
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 24.into()]),
            Operation::new("Td", vec![72.into(), 760.into()]),
            Operation::new("Tj", vec![Object::string_literal(text)]),
            Operation::new("ET", vec![]),
        ],
    };
    let content_id = document.add_object(Stream::new(dictionary! {}, content.encode().expect("PDF operations encode")));
    document.add_object(dictionary! { "Type" => "Page", "Parent" => parent, "Contents" => content_id })
}

/// A PDF that cannot be parsed: the header and first objects of a real one, cut off before
/// the page tree, the catalog and the cross-reference table.
pub fn corrupt_pdf() -> Vec<u8> {
    let mut bytes = pdf(&["This PDF is cut short."]);
    bytes.truncate(bytes.len() / 3);
    bytes
}

/// A minimal DOCX that Word opens, one paragraph per entry of `paragraphs`.
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let body: String = paragraphs.iter().map(|text| format!(r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#, xml_escape(text))).collect();
    docx_with_body(&mut |out| out.write_all(body.as_bytes()))
}

/// A DOCX bomb: its `word/document.xml` is a paragraph of 100 MiB of spaces, about 100 KiB
/// deflated, past the default 64 MiB document limit.
pub fn zip_bomb_docx() -> Vec<u8> {
    let spaces = vec![b' '; 1024 * 1024];
    docx_with_body(&mut |out| {
        out.write_all(br#"<w:p><w:r><w:t xml:space="preserve">"#)?;
        for _ in 0..100 {
            out.write_all(&spaces)?;
        }
        out.write_all(b"</w:t></w:r></w:p>")
    })
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

const DOCUMENT_START: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;

const DOCUMENT_END: &str = "<w:sectPr/></w:body></w:document>";

/// A DOCX zip (deflated) whose document body (the inside of `<w:body>`) `write_body` writes.
fn docx_with_body(write_body: &mut dyn FnMut(&mut dyn Write) -> std::io::Result<()>) -> Vec<u8> {
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.start_file("[Content_Types].xml", options).expect("a zip entry starts");
    zip.write_all(CONTENT_TYPES.as_bytes()).expect("writing into memory");
    zip.start_file("_rels/.rels", options).expect("a zip entry starts");
    zip.write_all(RELS.as_bytes()).expect("writing into memory");
    zip.start_file("word/document.xml", options).expect("a zip entry starts");
    zip.write_all(DOCUMENT_START.as_bytes()).expect("writing into memory");
    write_body(&mut zip).expect("writing into memory");
    zip.write_all(DOCUMENT_END.as_bytes()).expect("writing into memory");
    zip.finish().expect("a zip finishes in memory").into_inner()
}

/// `text` with the five XML special characters escaped.
fn xml_escape(text: &str) -> String {
    text.chars().fold(String::with_capacity(text.len()), |mut out, c| {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
        out
    })
}

/// A Windows x64 console executable of 1 KiB: DOS header and stub, PE signature, COFF and
/// PE32+ optional headers, one `.text` section holding a `ret`. What a renamed `.exe` starts with.
pub fn exe() -> Vec<u8> {
    let mut out = vec![0u8; 0x400];
    // DOS header: "MZ", the usual stub layout, and e_lfanew pointing at the PE header.
    put(&mut out, 0x00, b"MZ");
    put(&mut out, 0x02, &[0x90, 0, 0x03, 0, 0, 0, 0x04, 0, 0, 0, 0xff, 0xff, 0, 0, 0xb8, 0]);
    put(&mut out, 0x18, &0x40u16.to_le_bytes());
    put(&mut out, 0x3c, &0x80u32.to_le_bytes());
    put(&mut out, 0x40, &[0x0e, 0x1f, 0xba, 0x0e, 0x00, 0xb4, 0x09, 0xcd, 0x21, 0xb8, 0x01, 0x4c, 0xcd, 0x21]);
    put(&mut out, 0x4e, b"This program cannot be run in DOS mode.\r\r\n$");
    // PE signature and COFF header: x86-64, one section, a PE32+ optional header, executable.
    put(&mut out, 0x80, b"PE\0\0");
    put(&mut out, 0x84, &0x8664u16.to_le_bytes());
    put(&mut out, 0x86, &1u16.to_le_bytes());
    put(&mut out, 0x94, &0xf0u16.to_le_bytes());
    put(&mut out, 0x96, &0x0022u16.to_le_bytes());
    optional_header(&mut out, 0x98);
    // Section table: .text at RVA 0x1000, raw data at 0x200.
    put(&mut out, 0x188, b".text\0\0\0");
    for (offset, value) in [(0x190, 1u32), (0x194, 0x1000), (0x198, 0x200), (0x19c, 0x200), (0x1ac, 0x6000_0020)] {
        put(&mut out, offset, &value.to_le_bytes());
    }
    // The code: `ret`.
    put(&mut out, 0x200, &[0xc3]);
    out
}

/// The PE32+ optional header at `at`: entry point, image base, alignments, sizes, a console
/// subsystem and 16 (empty) data directories.
fn optional_header(out: &mut [u8], at: usize) {
    put(out, at, &0x020bu16.to_le_bytes());
    for (offset, value) in [(4, 0x200u32), (16, 0x1000), (20, 0x1000), (32, 0x1000), (36, 0x200), (56, 0x2000), (60, 0x200), (108, 16)] {
        put(out, at + offset, &value.to_le_bytes());
    }
    put(out, at + 24, &0x1_4000_0000u64.to_le_bytes());
    for (offset, value) in [(40, 6u16), (48, 6), (68, 3), (70, 0x8160)] {
        put(out, at + offset, &value.to_le_bytes());
    }
    for (offset, value) in [(72, 0x10_0000u64), (80, 0x1000), (88, 0x10_0000), (96, 0x1000)] {
        put(out, at + offset, &value.to_le_bytes());
    }
}

/// Writes `bytes` into `out` at `offset`.
fn put(out: &mut [u8], offset: usize, bytes: &[u8]) {
    out[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// The grain of [`jpeg`]: the amplitude of the noise added to each channel, tuned so that a
/// 2000×1500 JPEG at quality 95 weighs about 2 MB, as a phone photo does.
const PHOTO_GRAIN: u32 = 19;

/// A `width`×`height` diagonal gradient in three hues, each channel shifted by up to `grain`
/// of deterministic noise (the same image every run).
fn gradient(width: u32, height: u32, grain: u32) -> RgbImage {
    let mut noise = XorShift(0x9e37_79b9);
    let (w, h) = (width.max(1), height.max(1));
    RgbImage::from_fn(width, height, |x, y| {
        let base = [x * 255 / w, y * 255 / h, (x + y) * 255 / (w + h)];
        image::Rgb(base.map(|channel| byte(channel + noise.below(grain + 1)).saturating_sub(byte(grain / 2))))
    })
}

/// `image` with an opaque alpha channel.
fn with_alpha(image: &RgbImage) -> RgbaImage {
    RgbaImage::from_fn(image.width(), image.height(), |x, y| {
        let [r, g, b] = image.get_pixel(x, y).0;
        image::Rgba([r, g, b, 255])
    })
}

/// `value` as a byte, saturating at 255.
fn byte(value: u32) -> u8 {
    u8::try_from(value).unwrap_or(u8::MAX)
}

/// A tiny deterministic pseudo-random generator: the samples are the same on every run, and
/// no `rand` crate is needed for noise.
struct XorShift(u32);

impl XorShift {
    /// A number in `0..bound` (0 when `bound` is 0 or 1).
    fn below(&mut self, bound: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        if bound <= 1 { 0 } else { self.0 % bound }
    }
}
