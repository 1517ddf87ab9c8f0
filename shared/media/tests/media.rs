//! The crate against real files made by `media::samples`: each kind told from its bytes,
//! processed, and the hostile ones (bombs, a corrupt PDF, a renamed executable) refused
//! without panicking.

use std::sync::OnceLock;

use media::{Extract, FailureKind, Limits, Picture, Processed, Sniffed, THUMBNAIL_MAX_SIDE, matches_declared, process, samples, sha256_hex, sniff};

/// The DOCX bomb, made once: deflating 100 MiB takes seconds in a debug build.
fn zip_bomb_docx() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(samples::zip_bomb_docx)
}

const PE: Sniffed = Sniffed::Other("application/vnd.microsoft.portable-executable");

fn picture(bytes: &[u8]) -> Picture {
    match process(bytes, sniff(bytes), &Limits::default()) {
        Ok(Processed::Image(picture)) => picture,
        other => panic!("not an image: {other:?}"),
    }
}

fn document(bytes: &[u8], limits: &Limits) -> Extract {
    match process(bytes, sniff(bytes), limits) {
        Ok(Processed::Document(extract)) => extract,
        other => panic!("not a document: {other:?}"),
    }
}

#[test]
fn every_kind_is_told_from_its_bytes() {
    assert_eq!(sniff(&samples::png(40, 30)), Sniffed::Png);
    assert_eq!(sniff(&samples::jpeg(40, 30, 90)), Sniffed::Jpeg);
    assert_eq!(sniff(&samples::gif(40, 30)), Sniffed::Gif);
    assert_eq!(sniff(&samples::webp(40, 30)), Sniffed::Webp);
    assert_eq!(sniff(&samples::png_bomb(20_000, 20_000)), Sniffed::Png);
    assert_eq!(sniff(&samples::pdf(&["one"])), Sniffed::Pdf);
    assert_eq!(sniff(&samples::corrupt_pdf()), Sniffed::Pdf);
    assert_eq!(sniff(&samples::docx(&["one"])), Sniffed::Docx);
    assert_eq!(sniff(zip_bomb_docx()), Sniffed::Docx);
    assert_eq!(sniff(b"# Notes\n\n- one\n- two\n"), Sniffed::Text);
    assert_eq!(sniff(b"id,name\n1,\"Ada\"\n"), Sniffed::Text);
    assert_eq!(sniff(&samples::exe()), PE);
    assert_eq!(sniff(&[0x00, 0x01, 0x02, 0xff, 0xfe]), Sniffed::Other("application/octet-stream"));
}

#[test]
fn a_zip_without_a_word_body_is_not_a_docx() {
    let docx = samples::docx(&["x"]);
    // The same zip with the entry renamed in both its local header and the central directory.
    let renamed = replace_all(&docx, b"word/document.xml", b"word/documenx.xml");
    assert_eq!(sniff(&renamed), Sniffed::Other("application/zip"));
}

#[test]
fn canonical_mime_types() {
    let kinds = [Sniffed::Png, Sniffed::Jpeg, Sniffed::Gif, Sniffed::Webp, Sniffed::Pdf, Sniffed::Docx, Sniffed::Text, PE];
    let mimes = kinds.map(Sniffed::mime);
    assert_eq!(
        mimes,
        [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "text/plain",
            "application/vnd.microsoft.portable-executable",
        ]
    );
    for kind in kinds {
        assert!(matches_declared(kind, kind.mime()), "{kind:?}");
    }
}

#[test]
fn a_renamed_executable_does_not_match_its_declared_type() {
    let kind = sniff(&samples::exe());
    assert!(!matches_declared(kind, "image/png"));
    assert!(!kind.is_image());
    assert_eq!(process(&samples::exe(), kind, &Limits::default()), Ok(Processed::Other(kind)));
}

#[test]
fn declared_types_agree_or_not() {
    let png = sniff(&samples::png(2, 2));
    assert!(matches_declared(png, "image/png"));
    assert!(!matches_declared(png, "image/jpeg"));
    assert!(matches_declared(sniff(&samples::docx(&[])), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"));
    assert!(matches_declared(Sniffed::Text, "text/csv; charset=utf-8"));
    assert!(!matches_declared(Sniffed::Text, "application/pdf"));
}

#[test]
fn images_get_dimensions_and_a_small_decodable_thumbnail() {
    for (bytes, kind, width, height) in [
        (samples::png(1200, 800), Sniffed::Png, 1200, 800),
        (samples::jpeg(600, 900, 85), Sniffed::Jpeg, 600, 900),
        (samples::gif(300, 100), Sniffed::Gif, 300, 100),
        (samples::webp(512, 512), Sniffed::Webp, 512, 512),
    ] {
        let picture = picture(&bytes);
        assert_eq!((picture.kind, picture.width, picture.height), (kind, width, height));
        let thumbnail = &picture.thumbnail;
        assert_eq!(thumbnail.width.max(thumbnail.height), THUMBNAIL_MAX_SIDE, "{kind:?}");
        assert_eq!(thumbnail.content_type, "image/jpeg");
        assert_eq!(sniff(&thumbnail.bytes), Sniffed::Jpeg);
        let decoded = image::load_from_memory(&thumbnail.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (thumbnail.width, thumbnail.height));
        // The aspect ratio is kept, to the pixel.
        assert!((u64::from(thumbnail.width) * u64::from(height)).abs_diff(u64::from(thumbnail.height) * u64::from(width)) <= u64::from(width.max(height)));
    }
}

#[test]
fn small_images_are_not_upscaled() {
    let picture = picture(&samples::png(100, 40));
    assert_eq!((picture.thumbnail.width, picture.thumbnail.height), (100, 40));
}

#[test]
fn transparency_is_flattened_onto_white() {
    let picture = picture(&samples::webp(64, 8));
    let thumbnail = image::load_from_memory(&picture.thumbnail.bytes).unwrap().to_rgb8();
    let right = thumbnail.get_pixel(60, 0).0;
    assert!(right.iter().all(|&channel| channel > 120), "the transparent half is light: {right:?}");
}

#[test]
fn the_png_bomb_is_refused_from_its_header() {
    let bomb = samples::png_bomb(20_000, 20_000);
    assert!(bomb.len() < 4096, "the bomb is {} bytes", bomb.len());
    let failure = process(&bomb, Sniffed::Png, &Limits::default()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge);
    assert_eq!(failure.reason, "image is 20000×20000 pixels, above the 10000×10000 limit");
}

#[test]
fn the_decoder_allocation_limit_applies_too() {
    // Within the side limit, but 4000×4000 decodes to 16 MB of grey, over an 8 MiB allocation limit.
    let limits = Limits { max_image_alloc: 8 * 1024 * 1024, ..Limits::default() };
    let bomb = samples::png_bomb(4000, 4000);
    let failure = process(&bomb, Sniffed::Png, &limits).unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge, "{failure}");
    assert_eq!(failure.reason, "image needs more memory than the 8 MiB limit");
}

#[test]
fn a_truncated_image_is_unreadable() {
    let png = samples::png(300, 300);
    let failure = process(&png[..png.len() / 2], Sniffed::Png, &Limits::default()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unreadable, "{failure}");
    assert!(failure.reason.starts_with("image could not be decoded"), "{failure}");
}

#[test]
fn pdf_text_round_trips_with_its_page_count() {
    let pdf = samples::pdf(&["First page text", "Second page (with parentheses)", "Third and last"]);
    let extract = document(&pdf, &Limits::default());
    assert_eq!((extract.kind, extract.pages, extract.truncated), (Sniffed::Pdf, Some(3), false));
    assert_eq!(extract.text, "First page text\n\u{c}Second page (with parentheses)\n\u{c}Third and last\n");
    assert_eq!(extract.characters, extract.text.chars().count());
}

#[test]
fn pdf_pages_past_the_limit_are_counted_not_read() {
    let pdf = samples::pdf(&["alpha", "beta", "gamma", "delta"]);
    let extract = document(&pdf, &Limits { max_pdf_pages: 2, ..Limits::default() });
    assert_eq!((extract.pages, extract.truncated), (Some(4), true));
    assert!(extract.text.contains("beta") && !extract.text.contains("gamma"), "{:?}", extract.text);
}

#[test]
fn pdf_content_past_the_document_limit_is_refused() {
    let pdf = samples::pdf(&["a page whose content stream is some eighty bytes long once inflated"]);
    let failure = process(&pdf, Sniffed::Pdf, &Limits { max_document_bytes: 40, ..Limits::default() }).unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge, "{failure}");
    assert_eq!(failure.reason, "PDF expands beyond 40 bytes (compression bomb?)");
}

#[test]
fn a_corrupt_pdf_is_an_error() {
    let failure = process(&samples::corrupt_pdf(), Sniffed::Pdf, &Limits::default()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unreadable);
    assert!(failure.reason.starts_with("PDF could not be parsed: "), "{failure}");
}

#[test]
fn docx_text_is_its_paragraphs() {
    let docx = samples::docx(&["Quarterly report", "Revenue & costs <draft>", "Ünïcödé ✓"]);
    let extract = document(&docx, &Limits::default());
    assert_eq!((extract.kind, extract.pages, extract.truncated), (Sniffed::Docx, None, false));
    assert_eq!(extract.text, "Quarterly report\nRevenue & costs <draft>\nÜnïcödé ✓\n");
    assert_eq!(extract.characters, extract.text.chars().count());
}

#[test]
fn the_docx_zip_bomb_is_refused() {
    let bomb = zip_bomb_docx();
    assert!(bomb.len() < 200 * 1024, "the bomb is {} bytes", bomb.len());
    let failure = process(bomb, Sniffed::Docx, &Limits::default()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge);
    assert_eq!(failure.reason, "document expands beyond 64 MiB (zip bomb?)");
}

#[test]
fn docx_entries_are_capped() {
    let failure = process(&samples::docx(&["x"]), Sniffed::Docx, &Limits { max_archive_entries: 2, ..Limits::default() }).unwrap_err();
    assert_eq!(failure.reason, "document has 3 zip entries, above the 2 limit");
}

#[test]
fn text_is_kept_whole_or_truncated_at_the_character_limit() {
    let extract = document("\u{feff}naïve,café\n".as_bytes(), &Limits::default());
    assert_eq!((extract.text.as_str(), extract.characters, extract.pages, extract.truncated), ("naïve,café\n", 11, None, false));

    let long = "é".repeat(1000);
    let extract = document(long.as_bytes(), &Limits { max_text_chars: 10, ..Limits::default() });
    assert_eq!((extract.text.as_str(), extract.characters, extract.truncated), ("éééééééééé", 10, true));

    let extract = document(&samples::docx(&["abcdef", "ghij"]), &Limits { max_text_chars: 3, ..Limits::default() });
    assert_eq!((extract.text.as_str(), extract.truncated), ("abc", true));
}

#[test]
fn text_that_is_not_utf8_is_unreadable() {
    let failure = process(b"caf\xe9", Sniffed::Text, &Limits::default()).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unreadable);
}

#[test]
fn sha256_is_of_the_bytes() {
    assert_eq!(sha256_hex(b"hello"), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

/// Every sample cut at many lengths, processed both as what it is and as what its prefix
/// sniffs as: each call returns, Ok or Err, and a panic inside a parser comes back as a
/// `Panicked` failure rather than unwinding out of the test.
#[test]
fn truncated_files_never_panic_out() {
    let samples = [
        samples::png(64, 48),
        samples::jpeg(64, 48, 90),
        samples::gif(32, 24),
        samples::webp(64, 48),
        samples::png_bomb(20_000, 20_000),
        samples::pdf(&["one", "two"]),
        samples::corrupt_pdf(),
        samples::docx(&["one", "two"]),
        samples::exe(),
        "plain text, ✓".repeat(20).into_bytes(),
    ];
    let limits = Limits::default();
    let mut panicked = Vec::new();
    for sample in &samples {
        let kind = sniff(sample);
        for end in cut_points(sample.len()) {
            let prefix = &sample[..end];
            for as_kind in [kind, sniff(prefix)] {
                if let Err(failure) = process(prefix, as_kind, &limits)
                    && failure.kind == FailureKind::Panicked
                {
                    panicked.push(format!("{as_kind:?} cut at {end}: {failure}"));
                }
            }
        }
    }
    // Caught panics are fine for the contract; print them so that parser bugs are visible.
    for line in &panicked {
        println!("caught: {line}");
    }
}

/// Every length up to 300, then about 200 lengths spread over the rest.
fn cut_points(len: usize) -> impl Iterator<Item = usize> {
    let step = (len / 200).max(1);
    (0..len.min(300)).chain((300..len).step_by(step)).chain([len])
}

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    let mut at = 0;
    while let Some(found) = out[at..].windows(from.len()).position(|window| window == from) {
        out[at + found..at + found + from.len()].copy_from_slice(to);
        at += found + from.len();
    }
    out
}
